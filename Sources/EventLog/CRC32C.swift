import CEventLog

/// CRC-32C (Castagnoli) over bytes, hardware-accelerated where the CPU allows.
public enum CRC32C {
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        clickd_crc32c(seed, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }

    /// Whether the SSE4.2 instruction is used.
    public static var isHardwareAccelerated: Bool { clickd_crc32c_hardware() != 0 }
}
