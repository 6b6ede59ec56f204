/// An age on the command line: a number of seconds, or a number with s, m, h or d
/// (`--keep-local 1m`). Bounded to ten years, so no later arithmetic overflows.
enum AgeArgument {
    static func parse(_ text: String) -> Duration? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text)
        var unit = 1.0
        if let last = text.last, let scale = units[last] {
            number = number.dropLast()
            unit = scale
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * unit <= 10 * 365 * 86_400 else { return nil }
        return .milliseconds(Int64((value * unit * 1000).rounded()))
    }
}
