import ForecourtApp

@main
enum Entry {
    static func main() async {
        await ForecourtCommand.main()
    }
}
