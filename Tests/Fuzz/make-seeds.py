#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into Tests/Fuzz/Corpus/<target>/seed-*.
Formats as docs/link-tokens.md and docs/log-format.md define them; the key is the fuzz
harness's (kid "fz", 32 bytes of 0x42). Run once; the seeds are committed."""
import base64, hashlib, hmac, pathlib, struct

root = pathlib.Path(__file__).resolve().parent / "Corpus"
KEY = b"\x42" * 32

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80); n >>= 7
    out.append(n); return bytes(out)

def field(s): b = s.encode(); return varint(len(b)) + b

def token_body(dest, delivery="d1", customer="c1", source="17", link=None, kind=0, mtype=0, issued=1_790_000_000):
    flags = mtype | (kind << 3) | (0x20 if link is None else 0)
    body = bytes([1, 2]) + b"fz" + bytes([flags]) + varint(issued) + field(source) + field(delivery) + field(customer)
    if link is not None: body += field(link)
    return body + field(dest)

def open_body(delivery="d1", customer="c1", source="17", kind=0, mtype=0, issued=1_790_000_000):
    return bytes([2, 2]) + b"fz" + bytes([mtype | (kind << 3)]) + varint(issued) + field(source) + field(delivery) + field(customer)

def sign(body): return body + hmac.new(KEY, body, hashlib.sha256).digest()[:16]
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=")

def click(at, dest, ua="Mozilla/5.0", ip=b"\xcb\x00\x71\x00", head=False, link=None):
    flags = (1 if head else 0) | (0 << 1) | (0 << 4) | (0x40 if link is None else 0)
    out = bytes([1, 1]) + varint(at) + bytes([flags]) + varint(1_790_000_000)
    out += field("fz") + field("17") + field("d1") + field("c1")
    if link is not None: out += field(link)
    return out + field(dest) + field(ua) + field("edge-1") + bytes([len(ip)]) + ip

def opened(at, ua="Mozilla/5.0", ip=b"\x11\x00\x00\x00", relay=False):
    out = bytes([1, 3]) + varint(at) + bytes([1 if relay else 0]) + varint(1_790_000_000)
    return out + field("fz") + field("17") + field("d1") + field("c1") + field(ua) + field("edge-1") + bytes([len(ip)]) + ip

def delivered(at): return bytes([1, 2]) + varint(at) + bytes([0]) + field("17") + field("d1") + field("c1") + varint(3)

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8): crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def frame(lsn, payload):
    length = struct.pack("<I", len(payload)); tail = struct.pack("<Q", lsn) + payload
    return length + struct.pack("<I", crc32c(length + tail)) + tail

def footer(first, last, offset, segcrc, sealed_at=1_790_000_000_000):
    body = b"CLKDSEAL" + struct.pack("<HHIQQQQQI", 1, 64, 0, first, last, last - first + 1, offset, sealed_at, segcrc)
    return body + struct.pack("<I", crc32c(body))

seeds = {
    "token": [b64(sign(token_body("https://example.com/p?a=1#f"))), b64(sign(token_body("https://example.com/", link="hero"))),
              token_body("https://example.com/x", customer="c\x00"), token_body("https://xn--bcher-kva.example/ä", kind=2, mtype=4),
              b"", b"AAAA", b64(sign(token_body("https://a.com/")))[:-1] + b"=",
              b64(sign(open_body())), open_body(kind=1, mtype=0), open_body(customer="c\x01"), b64(sign(open_body()))[:-2]],
    "request-head": [b"\x00GET /c/abc HTTP/1.1\r\nHost: t\r\nUser-Agent: u\r\n\r\n",
                     b"\x41\r\n\r\nGET /c/x?y HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
                     b"\xffPOST /c/x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
                     b"\x07GET / HTTP/1.1\nHost: t\r\n\r\n", b"\x10" + b"\r\n" * 40, b"\x22HEAD /c/" + b"A" * 300 + b" HTTP/1.1\r\n\r\n"],
    "event-codec": [click(1_790_000_060_000, "https://example.com/p"), click(1_790_000_061_000, "https://e.com/", head=True, link="L1", ip=b""),
                    delivered(1_790_000_000_000), click(1, "https://e.com/", ip=bytes(16)), b"\x01\x07\x00", b"",
                    opened(1_790_000_005_000, relay=True), opened(1_790_000_900_000, ua="Mozilla/5.0 (via ggpht.com GoogleImageProxy)", ip=b"")],
    "frame": [frame(1, b"hello") + frame(2, b"world"), frame(7, click(1_790_000_060_000, "https://example.com/p")),
              frame(1, b"x")[:-1], b"\x00" * 32, frame(3, b"a" * 100) + b"\x00" * 16,
              frame(1, b"hello") + frame(2, b"world") + footer(1, 2, 100, 0x12345678), frame(9, b"z") + footer(9, 9, 65, 1)[:40]],
    "html": [b'<a href="https://a.com/x?y=1&amp;z">x</a> <a class="untracked" href="https://a.com/u">u</a>',
             b"<!-- <a href='https://hidden.com'> --><script>var a='<a href=\"https://s.com\">'</script><a href=https://a.com/ HREF=x>",
             b'<a data-link-id="hero" href="https://a.com/caf&eacute;?q=&#x80;&copy=1">e</a>{% cio_link url: "https://t.com" %}',
             b'<A HREF="mailto:x@y.z">m</A><a href="#top">t</a><a href="https://a.com/reset-password?token=1">r</a><a href="',
             b"<a href='https://a.com/\xc3\xa9'><a/href=\"https://b.com\"><a href=\"https://a.com\" clicktracking=off>",
             b"<html><body><a href='https://a.com'>x</a><!-- </body> --><script>'</body>'</script></BODY ></html>",
             b"<body>a</body>b</body><img src=\"https://t.example.com/o/x\"><a href=https://c.com>c</a>",
             b"<p>no body end <img src='https://t.example.com&#x2F;o/abc'> <a href=\"https://a.com"],
    "link-tag": [b'{% cio_link url: "https://a.com/x" track: true url_params: true link_id: "offer" %}',
                 b"{%- cio_link url:'https://a.com' track:false -%} {% if x %}", b'{% cio_link %}', b'{% cio_link url: "unterminated',
                 b'text {% cio_link url: https://bare.com, force: true %} and {% other %}'],
    "follower-file": [b"clickd-follower\nlog_id 6f1c2e1a-0000-4000-8000-000000000001\ndatabase 0b3e0000-1111-4222-8333-444455556666\nneeded_from 48213\nupdated 1765100000000\n",
                      b"clickd-follower\nlog_id 6f1c2e1a-0000-4000-8000-000000000001\ndatabase ../../etc/passwd\nneeded_from 1\nupdated 0\n",
                      b"clickd-follower\nlog_id 6f1c2e1a-0000-4000-8000-000000000001\ndatabase a\nneeded_from 184467440737095516160\nupdated 1\n",
                      b"clickd-follower\nlog_id not-a-uuid\ndatabase a\nneeded_from 0\n"],
    "erasure-files": [b"clickd-erasures\ndatabase 0b3e-1\nrevision 2-1765100000000\nkey " + b"07" * 32 + b"\nmac " + b"01" * 32 + b" 1\nmac " + b"ab" * 32 + b" 1765100000000\n",
                      b"clickd-erasures\ndatabase ../x\nrevision 1-1\nkey " + b"07" * 31 + b"\nmac " + b"01" * 32 + b" -1\n",
                      b"clickd-erasure-status\nlists 0b3e-1=2-1765100000000\nclean 0000000000000001.seg\nstale 0000000000000001.seg\narchive_clean_below 48213\ndone 0b3e-1=2-1765100000000 42\nblocked two\r lines\n",
                      b"clickd-erasure-status\n   \nclean ../../etc/passwd\ndone x 1\narchive_clean_below 0\nlists ,,a=b=c\n"],
    "location-url": ["https://bücher.example/straße?q=größe#frag".encode(), "https://例え.テスト/パス?クエリ=値".encode(),
                     "https://ＥＸＡＭＰＬＥ．com:0443/a/./b/../é".encode(), "https://0x7f.1/é".encode(), "https://[::FFFF:192.0.2.1]/é".encode(),
                     "https://u:pä@a@ex.com\\x?y'z#`".encode(), b"https://ex.com:99999/\xc3\xa9", b"https://%zz%C3/\xff\xfe", b"http:\xc3"],
    "apple-egress": [b"172.224.226.0/27,GB,GB-EN,London,\n172.224.226.32/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n",
                     b"# comment\n\n10.0.0.5,US,US-CA,,\r\n::/0\n0.0.0.0/0", b"172.224.999.0/27,GB\n", b"1.2.3.4/33\n::1/129,x"],
    "key-ring": [b"# ring\nkey k1 " + b64(KEY) + b" 2026-01-01T00:00:00Z active\nkey k2 " + b64(b"\x01" * 32) + b" 2026-02-01T00:00:00Z retired\n",
                 b"key k1 short 2026 active", b"kee x y z active\n", b"key k1 " + b64(KEY) + b" 2026 active\r\nkey k1 " + b64(KEY) + b" 2026 active",
                 b""],
}
for target, inputs in seeds.items():
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(inputs):
        (d / f"seed-{i:02d}").write_bytes(data)
    print(target, len(inputs))
