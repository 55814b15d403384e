import Foundation

/// The migrations this build carries: `migrations/*.sql` as they were when it was built
/// (the EmbedMigrations plugin generates `encodedFiles`).
public enum EmbeddedMigrations {
    /// File name and exact bytes of each migration, in file-name order.
    public static var files: [(name: String, data: Data)] {
        encodedFiles.map { ($0.name, Data(base64Encoded: $0.base64) ?? Data()) }
    }
}
