// One libFuzzer executable for every target: `clickd-fuzz TARGET [libFuzzer options] [corpus…]`.
// It enters libFuzzer's driver from its own main: SwiftPM renames an executable's entry
// point and points `main` at it, so libFuzzer's `main` is not linked.
import FuzzHarness

#if canImport(Glibc)
    import Glibc
#endif

nonisolated(unsafe) var selected = FuzzTarget.token

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    selected.run(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}

// The name is libFuzzer's C symbol.
// swift-format-ignore: AlwaysUseLowerCamelCase
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

guard CommandLine.arguments.count >= 2, let target = FuzzTarget(rawValue: CommandLine.arguments[1]) else {
    let usage = "usage: clickd-fuzz TARGET [libFuzzer options] [corpus…]; targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
selected = target
// libFuzzer sees the program name and what follows the target.
var arguments = [CommandLine.unsafeArgv[0]] + (2..<Int(CommandLine.argc)).map { CommandLine.unsafeArgv[$0] } + [nil]
var argc = CommandLine.argc - 1
exit(
    arguments.withUnsafeMutableBufferPointer { buffer in
        var argv = buffer.baseAddress!
        return LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput)
    })
