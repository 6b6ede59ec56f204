import Mustache

/// The pages' templates (swift-mustache), compiled into the binary: `{{x}}` escapes
/// `< > & " '`; the only `{{{x}}}` is the layout's `body`, itself a rendered template.
/// User-controlled text sits in `<bdi>`, so a right-to-left override in an id or a URL
/// cannot reorder the page around it.
enum Templates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in [
            ("layout", layout), ("sources", sources), ("overview", overview), ("segment", segment), ("person", person),
            ("problem", problem), ("bots", bots), ("urlSegment", urlSegment),
        ] {
            // The templates are constants of clickd: one that does not parse is a bug the
            // first test finds.
            try! library.register(text, named: name)
        }
        return library
    }()

    static func render(_ name: String, _ object: [String: Any]) -> String {
        library.render(object, withTemplate: name) ?? ""
    }

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · clickd</title>
        <link rel="stylesheet" href="{{base}}/report.css">
        <link rel="icon" href="{{base}}/favicon.svg" type="image/svg+xml">
        </head>
        <body>
        <header><nav aria-label="clickd"><a href="{{base}}/">Sources</a> <a href="{{base}}/bots">Bot clicks</a></nav></header>
        <main>
        {{{body}}}
        </main>
        <footer><p>clickd {{version}} · times in UTC</p></footer>
        </body>
        </html>

        """

    static let range = """
        <form class="range" method="get" action="">
        <label>From <input type="date" name="from" value="{{range.from}}"></label>
        <label>To <input type="date" name="to" value="{{range.to}}"></label>
        <label>Bots <select name="bots"><option value="exclude"{{^bots}} selected{{/bots}}>exclude</option><option value="include"{{#bots}} selected{{/bots}}>include</option></select></label>
        <button type="submit">Show</button>
        </form>
        <p class="range-shown">{{range.from}} to {{range.to}} (UTC days)</p>
        """

    static let sources = """
        <h1>Sources</h1>
        \(range)
        <table>
        <caption>Campaigns, newsletters and transactional messages: deliveries, clicks and opens, all time (bot clicks count in total clicks, not in human clicks or clicked customers; opened customers opened as people or clicked; machine opens are Apple's, scanners' and prefetches'). <a href="{{csv}}" download>CSV</a></caption>
        <thead><tr>
        {{#columns}}<th scope="col">{{#href}}<a href="{{href}}">{{label}}</a>{{/href}}{{^href}}{{label}}{{/href}}{{#sorted}} {{sorted}}{{/sorted}}</th>{{/columns}}
        </tr></thead>
        <tbody>
        {{#rows}}<tr><th scope="row"><a href="{{href}}"><bdi>{{kind}} {{id}}</bdi></a></th><td>{{delivered}}</td><td>{{clickedCustomers}}</td><td>{{clickRate}}</td><td>{{totalClicks}}</td><td>{{humanClicks}}</td><td>{{openedCustomers}}</td><td>{{openRate}}</td><td>{{clickToOpen}}</td><td>{{machineOpens}}</td></tr>
        {{/rows}}
        {{^rows}}<tr><td colspan="10">No deliveries or clicks yet.</td></tr>{{/rows}}
        </tbody>
        </table>
        {{#next}}<p><a rel="next" href="{{next}}">Next page</a></p>{{/next}}
        """

    static let overview = """
        <h1><bdi>{{kind}} {{id}}</bdi></h1>
        \(range)
        <section aria-label="All-time figures" class="tiles">
        <div class="tile"><span class="figure">{{delivered}}</span> delivered</div>
        <div class="tile"><span class="figure">{{openRate}}</span> opened ({{openedCustomers}} people)</div>
        <div class="tile"><span class="figure">{{clickRate}}</span> of recipients clicked ({{clickedCustomers}} people)</div>
        <div class="tile"><span class="figure">{{clickToOpen}}</span> click-to-open (of those who opened, the share who clicked)</div>
        <div class="tile"><span class="figure">{{totalClicks}}</span> clicks, repeats included</div>
        <div class="tile"><span class="figure">{{botShare}}</span> of clicks by bots</div>
        </section>
        {{#chart}}
        <section aria-label="Clicks over time" class="chart">
        <h2>Clicks over time</h2>
        <svg role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 720 200" width="720" height="200" xmlns="http://www.w3.org/2000/svg">
        <title id="chart-title">{{title}}</title>
        <desc id="chart-desc">{{desc}}</desc>
        <line x1="40" y1="176" x2="716" y2="176" class="axis"/>
        <text x="36" y="14" text-anchor="end">{{maximum}}</text>
        <text x="36" y="176" text-anchor="end">0</text>
        {{#bars}}<rect x="{{x}}" y="{{y}}" width="{{width}}" height="{{height}}"><title>{{label}}</title></rect>
        {{/bars}}
        {{#ticks}}<text x="{{x}}" y="192">{{text}}</text>
        {{/ticks}}
        </svg>
        <details class="chart-table" open><summary>The numbers ({{total}} clicks, {{human}} human)</summary>
        <table>
        <caption>Clicks over time, by the {{unit}}. <a href="{{csv}}" download>CSV</a></caption>
        <thead><tr><th scope="col">{{unit}}</th><th scope="col">Total clicks</th><th scope="col">Human clicks</th></tr></thead>
        <tbody>
        {{#rows}}<tr><th scope="row">{{label}}</th><td>{{total}}</td><td>{{human}}</td></tr>
        {{/rows}}
        </tbody>
        </table>
        </details>
        </section>
        {{/chart}}
        <table>
        <caption>Opens by who fetched the pixel, all time: {{totalOpens}} fetches, {{machineOpens}} of them machines'. A person who clicked counts as opened.</caption>
        <thead><tr><th scope="col">Fetched by</th><th scope="col">Opens</th><th scope="col">Share</th><th scope="col">Counts as opened</th><th scope="col">What it means</th></tr></thead>
        <tbody>
        {{#opens}}<tr><th scope="row">{{label}}</th><td>{{opens}}</td><td>{{share}}</td><td>{{persons}}</td><td>{{meaning}}</td></tr>
        {{/opens}}
        {{^anyOpens}}<tr><td colspan="5">No opens recorded (a message without a pixel, or images blocked).</td></tr>{{/anyOpens}}
        </tbody>
        </table>
        <table>
        <caption>Top Clicked Links, all time: every click counts, repeats included. <a href="{{csv}}" download>CSV</a></caption>
        <thead><tr><th scope="col">Link</th><th scope="col">URL</th><th scope="col">Total clicks</th><th scope="col">Human clicks</th><th scope="col">Unique clickers</th><th scope="col">First click</th><th scope="col">Last click</th></tr></thead>
        <tbody>
        {{#links}}<tr><th scope="row"><bdi>{{linkID}}</bdi></th><td class="url"><bdi>{{url}}</bdi></td><td>{{totalClicks}}</td><td>{{humanClicks}}</td><td><a href="{{segment}}">{{uniqueClickers}}</a></td><td>{{firstClick}}</td><td>{{lastClick}}</td></tr>
        {{/links}}
        {{^links}}<tr><td colspan="7">No clicks yet.</td></tr>{{/links}}
        </tbody>
        </table>
        """

    static let segment = """
        <h1>Clicked <bdi>{{linkID}}</bdi> in <a href="{{source}}"><bdi>{{kind}} {{id}}</bdi></a></h1>
        <p class="url">URL: <bdi>{{url}}</bdi></p>
        <p><span class="figure">{{size}}</span> {{#bots}}people clicked it (bots included){{/bots}}{{^bots}}people clicked it (a human click at least){{/bots}}</p>
        <table>
        <caption>Members of the segment, by customer id. <a href="{{csv}}" download>CSV</a></caption>
        <thead><tr><th scope="col">Customer</th><th scope="col">Clicks</th><th scope="col">Human clicks</th><th scope="col">First click</th><th scope="col">Last click</th></tr></thead>
        <tbody>
        {{#members}}<tr><th scope="row"><a href="{{person}}"><bdi>{{customer}}</bdi></a></th><td>{{clicks}}</td><td>{{humanClicks}}</td><td>{{firstClick}}</td><td>{{lastClick}}</td></tr>
        {{/members}}
        {{^members}}<tr><td colspan="5">Nobody.</td></tr>{{/members}}
        </tbody>
        </table>
        {{#next}}<p><a rel="next" href="{{next}}">Next page</a></p>{{/next}}
        """

    static let person = """
        <h1>Activity of <bdi>{{customer}}</bdi></h1>
        <p>Deliveries, opens and clicks, newest first. <a href="{{csv}}" download>CSV</a></p>
        <ol class="activity">
        {{#events}}<li>
        {{#click}}<details><summary><time>{{at}}</time> Clicked Link <bdi>{{linkID}}</bdi> in <a href="{{source}}"><bdi>{{kind}} {{id}}</bdi></a>{{^human}} (bot){{/human}}</summary>
        <dl>
        <dt>Link</dt><dd class="url"><bdi>{{url}}</bdi></dd>
        <dt>Message</dt><dd><bdi>{{messageType}} {{deliveryID}}</bdi></dd>
        <dt>Classified</dt><dd>{{#human}}human{{/human}}{{^human}}bot: {{botReason}}{{/human}}</dd>
        <dt>User agent</dt><dd><bdi>{{userAgent}}</bdi></dd>
        <dt>Address</dt><dd>{{ip}}</dd>
        </dl></details>{{/click}}
        {{#open}}<p class="opened"><time>{{at}}</time> Opened Email <bdi>{{messageType}} {{deliveryID}}</bdi> of <a href="{{source}}"><bdi>{{kind}} {{id}}</bdi></a> ({{openedAs}})</p>{{/open}}
        {{^click}}{{^open}}<p><time>{{at}}</time> Delivered <bdi>{{messageType}} {{deliveryID}}</bdi> of <a href="{{source}}"><bdi>{{kind}} {{id}}</bdi></a></p>{{/open}}{{/click}}
        </li>
        {{/events}}
        </ol>
        {{#next}}<p><a rel="next" href="{{next}}">Older</a></p>{{/next}}
        """

    static let bots = """
        <h1>Bot clicks</h1>
        \(range)
        <p>Clicks that clickd classified as made by software, not by a person: link scanners, previews, prefetches (HEAD),
        and bursts of one delivery's links within a second. They count in total clicks and never in human clicks or unique clickers.</p>
        <table>
        <caption>Bot clicks by reason, in the range. <a href="{{reasonsCSV}}" download>CSV</a></caption>
        <thead><tr><th scope="col">Reason</th><th scope="col">Clicks</th></tr></thead>
        <tbody>
        {{#reasons}}<tr><th scope="row">{{reason}}</th><td>{{clicks}}</td></tr>
        {{/reasons}}
        {{^reasons}}<tr><td colspan="2">No bot clicks in the range.</td></tr>{{/reasons}}
        </tbody>
        </table>
        <table>
        <caption>Bot clicks by source and reason, in the range. <a href="{{sourcesCSV}}" download>CSV</a></caption>
        <thead><tr><th scope="col">Source</th><th scope="col">Reason</th><th scope="col">Clicks</th></tr></thead>
        <tbody>
        {{#sources}}<tr><th scope="row"><a href="{{href}}"><bdi>{{kind}} {{id}}</bdi></a></th><td>{{reason}}</td><td>{{clicks}}</td></tr>
        {{/sources}}
        {{^sources}}<tr><td colspan="3">No bot clicks in the range.</td></tr>{{/sources}}
        </tbody>
        </table>
        """

    static let urlSegment = """
        <h1>Clicked a tracked link matching <bdi>{{pattern}}</bdi></h1>
        <form class="range" method="get" action="">
        <label>URL (* matches anything) <input type="text" name="url" value="{{pattern}}" size="50"></label>
        <label>Source (kind/id) <input type="text" name="source" value="{{source}}"></label>
        <label>Last click since <input type="date" name="since" value="{{since}}"></label>
        <label>Bots <select name="bots"><option value="exclude"{{^bots}} selected{{/bots}}>exclude</option><option value="include"{{#bots}} selected{{/bots}}>include</option></select></label>
        <button type="submit">Show</button>
        </form>
        <p><span class="figure">{{size}}</span> {{#bots}}people clicked a matching link (bots included){{/bots}}{{^bots}}people clicked a matching link (a human click at least){{/bots}}</p>
        <table>
        <caption>Matching links{{#moreLinks}} (the first 100){{/moreLinks}}</caption>
        <thead><tr><th scope="col">Source</th><th scope="col">Link</th><th scope="col">URL</th><th scope="col">Unique clickers</th></tr></thead>
        <tbody>
        {{#links}}<tr><th scope="row"><bdi>{{kind}} {{id}}</bdi></th><td><a href="{{href}}"><bdi>{{linkID}}</bdi></a></td><td class="url"><bdi>{{url}}</bdi></td><td>{{uniqueClickers}}</td></tr>
        {{/links}}
        {{^links}}<tr><td colspan="4">No tracked link matches.</td></tr>{{/links}}
        </tbody>
        </table>
        <table>
        <caption>Members of the segment, by customer id. <a href="{{csv}}" download>CSV</a></caption>
        <thead><tr><th scope="col">Customer</th><th scope="col">Clicks</th><th scope="col">Human clicks</th><th scope="col">Links</th><th scope="col">First click</th><th scope="col">Last click</th></tr></thead>
        <tbody>
        {{#members}}<tr><th scope="row"><a href="{{person}}"><bdi>{{customer}}</bdi></a></th><td>{{clicks}}</td><td>{{humanClicks}}</td><td>{{links}}</td><td>{{firstClick}}</td><td>{{lastClick}}</td></tr>
        {{/members}}
        {{^members}}<tr><td colspan="6">Nobody.</td></tr>{{/members}}
        </tbody>
        </table>
        {{#next}}<p><a rel="next" href="{{next}}">Next page</a></p>{{/next}}
        """

    static let problem = """
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        {{#retry}}<p>Try again in a few seconds.</p>{{/retry}}
        """

    /// The tab's icon (served by clickd: CSP allows images from 'self' only; without one a
    /// browser asks for /favicon.ico and logs the 404).
    static let favicon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f5fa8"/><path d="M4 4l8 4-3.5 1L11 13l-1.5.7L7 9.7 4.5 12z" fill="#fff"/></svg>

        """

    static let stylesheet = """
        body { font-family: "Liberation Sans", Arial, sans-serif; margin: 0 auto; max-width: 72rem; padding: 0 1rem; color: #1a1a1a; }
        header nav a { margin-right: 1rem; }
        table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
        caption { text-align: left; font-weight: bold; padding: .5rem 0; }
        th, td { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
        td { font-variant-numeric: tabular-nums; }
        .url { word-break: break-all; }
        .tiles { display: flex; flex-wrap: wrap; gap: 1rem; }
        .tile { border: 1px solid #ccc; border-radius: 4px; padding: .75rem 1rem; min-width: 12rem; }
        .figure { font-size: 1.6rem; font-weight: bold; display: block; }
        .range label { margin-right: 1rem; }
        .activity { list-style: none; padding: 0; }
        .activity li { border-bottom: 1px solid #eee; padding: .4rem 0; }
        dl { display: grid; grid-template-columns: 8rem 1fr; gap: .2rem 1rem; }
        svg text { font-size: 11px; fill: #444; }
        svg rect { fill: #1f5fa8; }
        svg .axis { stroke: #999; }
        .chart-table summary { cursor: pointer; }

        """
}
