import Foundation

/// A realistic HTML email (about 30 KB, 25 links: 21 product buttons, 3 footer links and a
/// mailto), for tests and the benchmark.
public enum EmailCorpus {
    public static let newsletter: String = {
        var html = """
            <!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
            <html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
            <title>Our <a> spring picks</title>
            <style type="text/css">body{margin:0;padding:0} a[href^="https"]{color:#0a6} .btn{border-radius:4px}
            @media only screen and (max-width:600px){ .col{width:100% !important} }</style>
            <!--[if mso]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->
            </head><body style="margin:0;padding:0;background:#f4f4f4">
            <table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr><td align="center">
            """
        for i in 1...21 {
            html += """
                <table class="col" width="600" cellpadding="0" cellspacing="0" border="0" style="background:#ffffff;margin:0 auto">
                <tr><td style="padding:24px 32px;font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:24px;color:#333333">
                <h2 style="margin:0 0 12px 0;font-size:22px">Pick number \(i): something you will like</h2>
                <p style="margin:0 0 16px 0">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut
                labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea
                commodo consequat &amp; more. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore.</p>
                <p style="margin:0 0 16px 0;color:#666666;font-size:14px">Excepteur sint occaecat cupidatat non proident, sunt in culpa
                qui officia deserunt mollit anim id est laborum. Sed ut perspiciatis unde omnis iste natus error sit voluptatem
                accusantium doloremque laudantium, totam rem aperiam, eaque ipsa quae ab illo inventore veritatis et quasi architecto.</p>
                <a class="btn" data-link-id="pick-\(i)" href="https://shop.example.com/collections/spring/item-\(i)?ref=email&amp;variant=\(i * 7)#details"
                   style="display:inline-block;padding:12px 20px;background:#0a6;color:#ffffff;text-decoration:none">See pick \(i)</a>
                </td></tr></table>

                """
        }
        html += """
            <p style="font-size:12px;color:#999999">You are receiving this because you subscribed.
            <a href="https://example.com/preferences?u=123">Preferences</a> ·
            <a class="untracked" href="https://example.com/unsubscribe?u=123">Unsubscribe</a> ·
            <a href="https://example.com/privacy">Privacy</a> · <a href="mailto:help@example.com">Help</a></p>
            </td></tr></table></body></html>

            """
        return html
    }()
}
