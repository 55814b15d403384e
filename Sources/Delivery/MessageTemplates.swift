import Mustache

/// The message templates, one text and one HTML body per notification kind inside a common
/// layout (`Templates/*.mustache`). They are compiled into the binary by SwiftPM
/// (`embedInCode`), so an installed `forecourt` finds them without a resource bundle beside it.
struct MessageTemplates: Sendable {
    let library: MustacheLibrary

    static let shared: MessageTemplates = {
        var library = MustacheLibrary()
        let files: [(String, [UInt8])] = [
            ("layout.txt", PackageResources.layout_txt_mustache),
            ("layout.html", PackageResources.layout_html_mustache),
            ("order_confirmation.txt", PackageResources.order_confirmation_txt_mustache),
            ("order_confirmation.html", PackageResources.order_confirmation_html_mustache),
            ("production_scheduled.txt", PackageResources.production_scheduled_txt_mustache),
            ("production_scheduled.html", PackageResources.production_scheduled_html_mustache),
            ("vin_assigned.txt", PackageResources.vin_assigned_txt_mustache),
            ("vin_assigned.html", PackageResources.vin_assigned_html_mustache),
            ("shipped.txt", PackageResources.shipped_txt_mustache),
            ("shipped.html", PackageResources.shipped_html_mustache),
            ("delivered.txt", PackageResources.delivered_txt_mustache),
            ("delivered.html", PackageResources.delivered_html_mustache),
            ("delay.txt", PackageResources.delay_txt_mustache),
            ("delay.html", PackageResources.delay_html_mustache),
        ]
        for (name, bytes) in files {
            // The files are ours and tested (DeliveryUnitTests): a parse error is a build defect.
            try! library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        return MessageTemplates(library: library)
    }()
}
