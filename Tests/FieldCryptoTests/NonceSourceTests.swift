import Foundation
import Testing

@testable import FieldCrypto

#if canImport(Glibc)
import Glibc
#endif

/// Issue 12, point 7: nonces never depend on a free file descriptor, and a failing generator
/// is an error of one seal, never a crash of the process.
@Suite struct NonceSourceTests {
    static let childVariable = "FORECOURT_TEST_NONCE_CHILD"

    @Test func aFailingGeneratorIsAnErrorOfOneSealNotACrash() throws {
        let failing = NonceSource(fill: { _ in false })
        #expect(throws: FieldCryptoError.randomUnavailable) { try failing.next() }
        let working = NonceSource()
        let first = try working.next()
        let second = try working.next()
        #expect(first.count == 12 && first != second)
    }

    /// Nonces drawn several at a time are as unique as single ones, across refills of the
    /// buffer (341 nonces a page), and a failing generator is an error there too.
    @Test func severalNoncesAtOnceAreAllDistinct() throws {
        let source = NonceSource()
        var seen: Set<[UInt8]> = []
        var drawn = 0
        for count in [1, 9, 340, 9, 341, 2, 9] {
            let bytes = try source.next(count: count)
            #expect(bytes.count == count * 12)
            for index in 0..<count { seen.insert(Array(bytes[(index * 12)..<((index + 1) * 12)])) }
            seen.insert(try source.next())
            drawn += count + 1
        }
        #expect(seen.count == drawn)
        #expect(throws: FieldCryptoError.randomUnavailable) { try NonceSource(fill: { _ in false }).next(count: 9) }
    }

    #if os(Linux)
    /// Descriptors are process-wide, so this runs in a child process (this test binary, running
    /// only `childSealsWithEveryDescriptorInUse`), where no descriptor is left free; sealing
    /// refills the nonce buffer several times there.
    @Test func sealingNeedsNoFreeFileDescriptor() async throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = [
            "--testing-library", "swift-testing", "--filter", "NonceSourceTests/childSealsWithEveryDescriptorInUse",
        ]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.childVariable: "1"]) { $1 }
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        // Read and waited for on a thread of its own, not a cooperative one (the child takes seconds).
        let text = await withCheckedContinuation { continuation in
            Thread {
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                child.waitUntilExit()
                continuation.resume(returning: text)
            }.start()
        }
        #expect(child.terminationReason == .exit, "the child crashed: \(text.suffix(2000))")
        #expect(child.terminationStatus == 0, "\(text.suffix(2000))")
        #expect(text.contains("sealed 1500 fields with no free descriptor"), "\(text.suffix(2000))")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment[NonceSourceTests.childVariable] == "1"))
    func childSealsWithEveryDescriptorInUse() throws {
        let cipher = FieldCipher(keyring: .generate())
        let context = FieldContext(group: UUID(), table: "customers", column: "full_name", row: UUID())
        _ = try cipher.seal("warm up", context: context)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let saved = limit
        // The lowest free descriptor number is the count of open ones below it: allow none more.
        let probe = open("/dev/null", O_RDONLY)
        #expect(probe >= 0)
        close(probe)
        limit.rlim_cur = rlim_t(probe)
        #expect(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(open("/dev/null", O_RDONLY) < 0, "a descriptor was still free")
        var sealed = 0
        for index in 0..<1500 {
            if (try? cipher.seal("field \(index)", context: context)) != nil { sealed += 1 }
        }
        var restore = saved
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restore)
        #expect(sealed == 1500)
        print("sealed \(sealed) fields with no free descriptor")
    }
    #endif
}
