/// CSV as RFC 4180 writes it, with OWASP's guard against formula injection: the twin of
/// every table on the report pages, for a spreadsheet.
///
/// Written by hand (the package list's CSV libraries write to Foundation streams or hold
/// whole tables): rows are appended to a byte buffer that the route streams out in chunks,
/// and every cell passes through `guarded` first.
public enum CSV {
    /// The characters a spreadsheet reads as the start of a formula (`=`, `+`, `-`, `@`) or
    /// that it strips before looking for one (tab, CR): a cell that begins with one gets a
    /// leading `'`, which spreadsheets show as text and do not evaluate.
    static let formulaStarts: Set<UInt8> = [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D]

    /// One cell: the formula guard, then quoted when it holds `"`, `,`, CR or LF (`"` doubled).
    public static func cell(_ value: String) -> String {
        var text = value
        if let first = text.utf8.first, formulaStarts.contains(first) { text = "'" + text }
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: ",") || $0 == 0x0D || $0 == 0x0A }) else {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A record: cells joined by commas, ended by CRLF.
    public static func row(_ cells: [String]) -> String {
        cells.map(cell).joined(separator: ",") + "\r\n"
    }
}
