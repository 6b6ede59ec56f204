/// HTML character references in attribute values: decoded exactly once before a URL is
/// signed, and the tracked URL escaped again when written back.
public enum HTMLEntities {
    /// The named references that occur in URLs; others are left as written (as browsers do
    /// for names they do not know, an ampersand not followed by a known name is literal).
    static let named: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{a0}",
        "equals": "=", "quest": "?", "num": "#", "percnt": "%", "sol": "/", "colon": ":",
        "semi": ";", "plus": "+", "comma": ",", "period": ".", "excl": "!", "commat": "@",
        "lowbar": "_", "hyphen": "-", "dollar": "$", "tilde": "~", "Tab": "\t", "NewLine": "\n",
    ]

    /// Decodes `&name;`, `&#NN;` and `&#xHH;` references (a semicolon is required; an
    /// unknown name or an invalid number stays as written). Fast path: no `&`, no work.
    public static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        guard bytes.contains(UInt8(ascii: "&")) else { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let c = bytes[i]
            guard c == UInt8(ascii: "&"),
                  let semi = bytes[(i + 1)..<min(bytes.endIndex, i + 34)].firstIndex(of: UInt8(ascii: ";")),
                  let replacement = reference(bytes[(i + 1)..<semi])
            else {
                out.append(c)
                i += 1
                continue
            }
            out.append(contentsOf: replacement.utf8)
            i = semi + 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func reference(_ name: ArraySlice<UInt8>) -> String? {
        guard let first = name.first else { return nil }
        if first == UInt8(ascii: "#") {
            let digits = name.dropFirst()
            let hex = digits.first == UInt8(ascii: "x") || digits.first == UInt8(ascii: "X")
            let text = String(decoding: hex ? digits.dropFirst() : digits, as: UTF8.self)
            guard !text.isEmpty, let value = UInt32(text, radix: hex ? 16 : 10), value != 0,
                  let scalar = Unicode.Scalar(value)
            else { return nil }
            return String(Character(scalar))
        }
        return named[String(decoding: name, as: UTF8.self)]
    }

    /// Escapes `text` for an attribute value quoted with `quote` (`"` or `'`).
    public static func escapeAttribute(_ text: String, quote: UInt8 = UInt8(ascii: "\"")) -> String {
        // Tracked URLs (a base and base64url) almost never need escaping.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'")
            || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") }) {
            return text
        }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "\"" where quote == UInt8(ascii: "\""): out += "&quot;"
            case "'" where quote == UInt8(ascii: "'"): out += "&#39;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
