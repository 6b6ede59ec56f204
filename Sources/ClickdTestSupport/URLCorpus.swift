/// Destinations that break other trackers: what a person reaches must be byte for byte
/// the destination that was signed. Shared by the token tests and the edge tests.
public enum URLCorpus {
    public static let destinations: [String] = [
        "https://example.com",
        "https://example.com/",
        "https://example.com/a?x=1&y=2",
        "https://example.com/a?flag&x=&y=1&flag",
        "https://example.com/a%20b/%E2%9C%93?q=%2F%3F%26%23&p=a+b",
        "https://example.com/a?q=100%25#section-2",
        "https://example.com/#/spa/route?x=1",
        "https://example.com/a#",
        "https://example.com/a?",
        "https://bücher.example/straße?q=größe",
        "https://xn--bcher-kva.example/",
        "https://例え.テスト/パス?クエリ=値#断片",
        "https://example.com:8443/a",
        "http://127.0.0.1:8080/x?y",
        "https://[2001:db8::1]:443/x",
        "https://user:pass@example.com/a",
        "https://example.com/a;b=c/d?e=f;g",
        "https://example.com/" + String(repeating: "long-path-segment/", count: 455) + "?end=1",  // over 8 KB
        "https://example.com/emoji/😀?x=🎉",
        "HTTPS://EXAMPLE.COM/UPPER",
    ]
}
