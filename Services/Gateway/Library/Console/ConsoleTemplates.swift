import Mustache

/// The console's pages as Mustache templates, kept in the binary so a container image needs no
/// resource folder beside it. `{{name}}` escapes HTML; no template uses the unescaped forms, so
/// every value a merchant or an endpoint sent is shown as text. No inline script or style: the
/// Content-Security-Policy forbids both.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do { try library.register(text, named: name) } catch { preconditionFailure("console template \(name) does not parse: \(error)") }
        }
        return library
    }()

    static let templates: [String: String] = [
        "layout": layout, "sign-in": signIn, "message": message, "endpoints": endpoints, "endpoint": endpoint, "secret": secret,
        "events": events, "event": event, "payments": payments, "payment": payment, "refunds": refunds, "disputes": disputes,
        "dispute": dispute, "recovery": recovery, "operator": operatorView,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Paywire console</title>
        <link rel="stylesheet" href="/console/static/console.css">
        </head>
        <body>
        <header>
        <a class="brand" href="/console">Paywire console</a>
        {{#signedIn}}
        <nav>
        {{#merchant}}<a href="/console/endpoints">Webhook endpoints</a>
        <a href="/console/events">Events log</a>
        <a href="/console/payments">Payments</a>
        <a href="/console/refunds">Refunds</a>
        <a href="/console/disputes">Disputes</a>
        <a href="/console/recovery">Recovery jobs</a>{{/merchant}}
        {{#operator}}<a href="/console/operator">Operator</a>{{/operator}}
        </nav>
        <form method="post" action="/console/sign-out" class="sign-out">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <span class="who">{{who}}</span> <button type="submit">Sign out</button>
        </form>
        {{/signedIn}}
        </header>
        <main>
        <h1>{{title}}</h1>
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{#problem}}<p class="problem" role="alert">{{problem}}</p>{{/problem}}
        {{$body}}{{/body}}
        </main>
        </body>
        </html>
        """

    static let signIn = """
        {{<layout}}{{$body}}
        <form method="post" action="/console/sign-in" class="card">
        <input type="hidden" name="csrf_token" value="{{signInToken}}">
        <label for="api_key">API key</label>
        <input id="api_key" name="api_key" type="password" autocomplete="off" required>
        <p class="hint">A merchant's secret key opens that merchant's pages; the admin key opens the operator view.
        The key stays on the server; your browser keeps only a session cookie.</p>
        <button type="submit">Sign in</button>
        </form>
        {{/body}}{{/layout}}
        """

    static let message = """
        {{<layout}}{{$body}}
        <p>{{text}}</p>
        <p><a href="{{back}}">Back</a></p>
        {{/body}}{{/layout}}
        """

    static let eventCheckboxes = """
        <fieldset><legend>Events</legend>
        {{#eventChoices}}<label class="check"><input type="checkbox" name="events" value="{{name}}"{{#checked}} checked{{/checked}}> {{name}}</label>
        {{/eventChoices}}
        </fieldset>
        """

    static let endpoints = """
        {{<layout}}{{$body}}
        {{#profiles}}
        <section>
        <h2>{{profile_name}} <small>{{profile_id}}</small></h2>
        <table>
        <thead><tr><th>Endpoint</th><th>URL</th><th>Status</th><th>Last success</th><th>Consecutive failures</th><th>Success rate (1 h)</th><th>Events</th></tr></thead>
        <tbody>
        {{#endpoints}}<tr class="endpoint-row">
        <td><a href="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}">{{webhook_endpoint_id}}</a></td>
        <td class="url">{{webhook_url}}</td><td><span class="status {{status}}">{{status}}</span></td>
        <td>{{last_success_at}}</td><td>{{consecutive_failures}}</td><td>{{success_rate}}</td><td>{{events}}</td>
        </tr>
        {{/endpoints}}
        {{^endpoints}}<tr><td colspan="7">No endpoints yet.</td></tr>{{/endpoints}}
        </tbody>
        </table>
        </section>
        {{/profiles}}
        <section>
        <h2>Add an endpoint</h2>
        <form method="post" action="/console/endpoints" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <label for="profile_id">Business profile</label>
        <select id="profile_id" name="profile_id">{{#profiles}}<option value="{{profile_id}}">{{profile_name}}</option>{{/profiles}}</select>
        <label for="webhook_url">URL</label>
        <input id="webhook_url" name="webhook_url" type="url" required placeholder="https://example.com/webhooks">
        \(eventCheckboxes)
        <button type="submit">Add endpoint</button>
        </form>
        </section>
        {{/body}}{{/layout}}
        """

    static let endpoint = """
        {{<layout}}{{$body}}
        {{#endpoint}}
        <dl class="fields">
        <dt>Endpoint</dt><dd>{{webhook_endpoint_id}}</dd>
        <dt>URL</dt><dd class="url">{{webhook_url}}</dd>
        <dt>Status</dt><dd><span class="status {{status}}">{{status}}</span>{{#inactive_reason}} ({{inactive_reason}}){{/inactive_reason}}</dd>
        <dt>Last success</dt><dd>{{last_success_at}}</dd>
        <dt>Last failure</dt><dd>{{last_failure_at}}</dd>
        <dt>Consecutive failures</dt><dd>{{consecutive_failures}}</dd>
        <dt>Success rate (1 h)</dt><dd>{{success_rate}} of {{attempts_last_hour}} attempts</dd>
        </dl>
        <p><a href="/console/events?webhook_endpoint_id={{webhook_endpoint_id}}">This endpoint's deliveries</a></p>
        {{^deprecated}}
        <section>
        <h2>Events</h2>
        <form method="post" action="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}/events" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        \(eventCheckboxes)
        <button type="submit">Save events</button>
        </form>
        </section>
        <section>
        <h2>Recover failed deliveries</h2>
        <form method="post" action="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}/recover" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <label for="since">Since (UTC, at most 14 days ago)</label>
        <input id="since" name="since" type="datetime-local" step="1" required value="{{recoverSince}}">
        <button type="submit">Recover</button>
        </form>
        </section>
        <section class="actions">
        <h2>Secret and state</h2>
        <form method="post" action="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}/rotate"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit">Rotate the signing secret</button></form>
        {{#active}}<form method="post" action="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}/disable"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit">Disable</button></form>{{/active}}
        {{^active}}<form method="post" action="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}/enable"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit">Enable</button></form>{{/active}}
        <form method="post" action="/console/endpoints/{{profile_id}}/{{webhook_endpoint_id}}/delete"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit" class="danger">Delete</button></form>
        </section>
        {{/deprecated}}
        {{/endpoint}}
        {{/body}}{{/layout}}
        """

    static let secret = """
        {{<layout}}{{$body}}
        <p>The signing secret of <strong>{{endpointId}}</strong>. It is shown this once: store it now.{{#rotated}} The previous secret stays valid for 24 hours.{{/rotated}}</p>
        <pre class="secret" id="signing-secret">{{secret}}</pre>
        <p><a href="/console/endpoints/{{profileId}}/{{endpointId}}">Go to the endpoint</a></p>
        {{/body}}{{/layout}}
        """

    static let events = """
        {{<layout}}{{$body}}
        <form method="get" action="/console/events" class="filters">
        <label>Object id <input name="object_id" value="{{filters.object_id}}"></label>
        <label>Endpoint <input name="webhook_endpoint_id" value="{{filters.webhook_endpoint_id}}"></label>
        <label>Event type <select name="event_types"><option value="">any</option>{{#eventTypes}}<option value="{{name}}"{{#checked}} selected{{/checked}}>{{name}}</option>{{/eventTypes}}</select></label>
        <label>Delivered <select name="is_delivered"><option value="">any</option><option value="true"{{#filters.delivered}} selected{{/filters.delivered}}>yes</option><option value="false"{{#filters.undelivered}} selected{{/filters.undelivered}}>no</option></select></label>
        <button type="submit">Filter</button>
        </form>
        <p>{{total}} deliveries</p>
        <table>
        <thead><tr><th>Delivery</th><th>Event</th><th>Object</th><th>Endpoint</th><th>Status</th><th>Attempts</th><th>Created</th></tr></thead>
        <tbody>
        {{#events}}<tr class="event-row">
        <td><a href="/console/events/{{event_id}}">{{event_id}}</a></td><td>{{event_type}}</td><td>{{object_id}}</td><td>{{webhook_endpoint_id}}</td>
        <td><span class="status {{delivery_status}}">{{delivery_status}}</span></td><td>{{attempt_count}}</td><td>{{created}}</td>
        </tr>
        {{/events}}
        {{^events}}<tr><td colspan="7">No deliveries match.</td></tr>{{/events}}
        </tbody>
        </table>
        {{#next}}<p><a href="/console/events?{{next}}">Older</a></p>{{/next}}
        {{/body}}{{/layout}}
        """

    static let headers = """
        <table class="headers">{{#headers}}<tr><th>{{name}}</th><td>{{value}}</td></tr>{{/headers}}</table>
        """

    static let event = """
        {{<layout}}{{$body}}
        {{#delivery}}
        <dl class="fields">
        <dt>Event</dt><dd>{{event_type}}</dd>
        <dt>Object</dt><dd>{{object_id}}</dd>
        <dt>Endpoint</dt><dd>{{webhook_endpoint_id}}</dd>
        <dt>Status</dt><dd><span class="status {{delivery_status}}">{{delivery_status}}</span>{{#status_reason}} ({{status_reason}}){{/status_reason}}</dd>
        <dt>Attempts</dt><dd>{{attempt_count}}</dd>
        <dt>Next attempt</dt><dd>{{next_attempt_at}}</dd>
        {{#trace_id}}<dt>Trace</dt><dd class="url" id="trace-id">{{trace_id}}</dd>{{/trace_id}}
        </dl>
        <form method="post" action="/console/events/{{event_id}}/retry" class="inline">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <button type="submit">Retry now</button>
        </form>
        {{/delivery}}
        <h2>Attempts</h2>
        {{#attempts}}
        <section class="attempt">
        <h3>{{delivery_attempt}} · {{created}} · <span class="status {{outcome}}">{{outcomeText}}</span>{{#latency_ms}} · {{latency_ms}} ms{{/latency_ms}}</h3>
        {{#error_message}}<p class="problem">{{error_message}}</p>{{/error_message}}
        <div class="pair">
        <div><h4>Request</h4>{{#request}}\(headers)<pre>{{body}}</pre>{{/request}}</div>
        <div><h4>Response</h4>{{#response}}\(headers)<pre>{{body}}</pre>{{/response}}</div>
        </div>
        </section>
        {{/attempts}}
        {{^attempts}}<p>No attempt yet.</p>{{/attempts}}
        {{/body}}{{/layout}}
        """

    static let payments = """
        {{<layout}}{{$body}}
        <table>
        <thead><tr><th>Payment</th><th>Status</th><th>Amount</th><th>Connector</th><th>Error</th><th>Created</th></tr></thead>
        <tbody>
        {{#payments}}<tr class="payment-row">
        <td><a href="/console/payments/{{payment_id}}">{{payment_id}}</a></td><td><span class="status {{status}}">{{status}}</span></td>
        <td>{{amount}} {{currency}}</td><td>{{connector}}</td><td>{{error_code}}</td><td>{{created}}</td>
        </tr>
        {{/payments}}
        {{^payments}}<tr><td colspan="6">No payments.</td></tr>{{/payments}}
        </tbody>
        </table>
        {{#next}}<p><a href="/console/payments?starting_after={{next}}">Older</a></p>{{/next}}
        {{/body}}{{/layout}}
        """

    static let fieldList = """
        <dl class="fields">{{#fields}}<dt>{{name}}</dt><dd>{{#pre}}<pre>{{value}}</pre>{{/pre}}{{^pre}}{{value}}{{/pre}}</dd>{{/fields}}</dl>
        """

    static let payment = """
        {{<layout}}{{$body}}
        \(fieldList)
        {{#traceId}}<p>Trace <code id="trace-id">{{traceId}}</code> (the gateway request, payment-core, the connector call and every webhook attempt)</p>{{/traceId}}
        <p><a href="/console/events?object_id={{paymentId}}">Webhook deliveries of this payment</a> · <a href="/console/recovery/{{paymentId}}">Recovery job</a></p>
        <h2>Refunds</h2>
        <table>
        <thead><tr><th>Refund</th><th>Status</th><th>Amount</th><th>Error</th><th>Created</th></tr></thead>
        <tbody>
        {{#refunds}}<tr><td>{{refund_id}}</td><td><span class="status {{status}}">{{status}}</span></td><td>{{amount}} {{currency}}</td><td>{{error_code}}</td><td>{{created}}</td></tr>{{/refunds}}
        {{^refunds}}<tr><td colspan="5">No refunds.</td></tr>{{/refunds}}
        </tbody>
        </table>
        {{/body}}{{/layout}}
        """

    static let refunds = """
        {{<layout}}{{$body}}
        <table>
        <thead><tr><th>Refund</th><th>Payment</th><th>Status</th><th>Amount</th><th>Error</th><th>Created</th></tr></thead>
        <tbody>
        {{#refunds}}<tr><td>{{refund_id}}</td><td><a href="/console/payments/{{payment_id}}">{{payment_id}}</a></td><td><span class="status {{status}}">{{status}}</span></td><td>{{amount}} {{currency}}</td><td>{{error_code}}</td><td>{{created}}</td></tr>{{/refunds}}
        {{^refunds}}<tr><td colspan="6">No refunds.</td></tr>{{/refunds}}
        </tbody>
        </table>
        {{/body}}{{/layout}}
        """

    static let disputes = """
        {{<layout}}{{$body}}
        <table>
        <thead><tr><th>Dispute</th><th>Payment</th><th>Stage</th><th>Status</th><th>Amount</th><th>Reason</th><th>Created</th></tr></thead>
        <tbody>
        {{#disputes}}<tr class="dispute-row"><td><a href="/console/disputes/{{dispute_id}}">{{dispute_id}}</a></td><td><a href="/console/payments/{{payment_id}}">{{payment_id}}</a></td>
        <td>{{dispute_stage}}</td><td><span class="status {{dispute_status}}">{{dispute_status}}</span></td><td>{{amount}} {{currency}}</td><td>{{connector_reason}}</td><td>{{created_at}}</td></tr>
        {{/disputes}}
        {{^disputes}}<tr><td colspan="7">No disputes.</td></tr>{{/disputes}}
        </tbody>
        </table>
        {{/body}}{{/layout}}
        """

    static let dispute = """
        {{<layout}}{{$body}}
        \(fieldList)
        {{#acceptable}}
        <form method="post" action="/console/disputes/{{disputeId}}/accept" class="inline">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <button type="submit" class="danger">Accept the dispute</button>
        </form>
        {{/acceptable}}
        {{/body}}{{/layout}}
        """

    static let recovery = """
        {{<layout}}{{$body}}
        <form method="get" action="/console/recovery" class="filters">
        <label>Payment id of the job <input name="payment_id" value="{{paymentId}}" required></label>
        <button type="submit">Open</button>
        </form>
        {{#job}}
        \(fieldList)
        <h2>Attempts</h2>
        <table>
        <thead><tr><th>#</th><th>When</th><th>Status</th><th>Decline</th><th>Advice</th><th>Payment</th></tr></thead>
        <tbody>
        {{#attempts}}<tr><td>{{number}}</td><td>{{at}}</td><td>{{status}}</td><td>{{decline}}</td><td>{{advice}}</td><td>{{payment}}</td></tr>{{/attempts}}
        {{^attempts}}<tr><td colspan="6">No attempt yet.</td></tr>{{/attempts}}
        </tbody>
        </table>
        <p><a href="/console/events?object_id={{paymentId}}">Its webhook deliveries (the final event among them)</a></p>
        {{/job}}
        {{/body}}{{/layout}}
        """

    static let operatorView = """
        {{<layout}}{{$body}}
        <section>
        <h2>Merchant</h2>
        <form method="post" action="/console/operator/merchant" class="filters">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <label>Open a merchant's pages <input name="merchant_id" value="{{merchantId}}" required></label>
        <button type="submit">Open</button>
        </form>
        </section>
        <section>
        <h2>Services</h2>
        <table>
        <thead><tr><th>Service</th><th>Readiness</th><th>Problems</th></tr></thead>
        <tbody>{{#services}}<tr><td>{{name}}</td><td><span class="status {{state}}">{{state}}</span></td><td>{{problems}}</td></tr>{{/services}}</tbody>
        </table>
        </section>
        <section>
        <h2>Dead letters</h2>
        {{#deadLettersProblem}}<p class="problem">{{deadLettersProblem}}</p>{{/deadLettersProblem}}
        <table>
        <thead><tr><th>Id</th><th>When</th><th>Topic</th><th>Consumer</th><th>Reason</th></tr></thead>
        <tbody>
        {{#deadLetters}}<tr><td>{{id}}</td><td>{{at}}</td><td>{{topic}}</td><td>{{consumer}}</td><td>{{reason}}</td></tr>{{/deadLetters}}
        {{^deadLetters}}<tr><td colspan="5">None.</td></tr>{{/deadLetters}}
        </tbody>
        </table>
        <p class="hint">Replay one with <code>paywire deadletters replay ID</code> once its cause is fixed.</p>
        </section>
        {{/body}}{{/layout}}
        """

    static let stylesheet = """
        :root { --ink: #1d2330; --muted: #5b6474; --line: #d9dde4; --accent: #3156d3; --bad: #b42318; --good: #137333; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--ink); background: #f6f7f9; }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
        header nav { display: flex; flex-wrap: wrap; gap: .9rem; flex: 1; }
        a { color: var(--accent); }
        .brand { font-weight: 700; text-decoration: none; color: var(--ink); }
        .sign-out { display: flex; gap: .5rem; align-items: center; }
        .who { color: var(--muted); }
        main { padding: 1rem 1.2rem 3rem; max-width: 80rem; }
        h1 { font-size: 1.4rem; }
        table { border-collapse: collapse; width: 100%; background: #fff; margin: .5rem 0 1rem; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; word-break: break-word; }
        .headers th { width: 16rem; font-weight: 500; color: var(--muted); }
        pre { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
        .card, .filters { background: #fff; border: 1px solid var(--line); padding: 1rem; display: grid; gap: .5rem; max-width: 40rem; }
        .filters { display: flex; flex-wrap: wrap; align-items: end; max-width: none; }
        label.check { display: inline-block; margin-right: 1rem; }
        fieldset { border: 1px solid var(--line); }
        .actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
        .actions h2 { width: 100%; }
        .inline { display: inline; }
        button { padding: .35rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
        button.danger { background: var(--bad); border-color: var(--bad); }
        .notice { background: #e7f3ea; border: 1px solid var(--good); padding: .5rem; }
        .problem { background: #fdecea; border: 1px solid var(--bad); padding: .5rem; }
        .status { padding: 0 .35rem; border-radius: 3px; background: #eef0f4; }
        .status.delivered, .status.active, .status.succeeded, .status.ready, .status.success, .status.won { background: #e7f3ea; color: var(--good); }
        .status.retries_exceeded, .status.inactive, .status.failed, .status.not_ready, .status.failure, .status.lost { background: #fdecea; color: var(--bad); }
        .fields { display: grid; grid-template-columns: minmax(12rem, max-content) 1fr; gap: .2rem 1rem; background: #fff; padding: .8rem; border: 1px solid var(--line); }
        .fields dd { margin: 0; word-break: break-word; }
        .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
        .attempt { border-top: 2px solid var(--line); margin-top: 1rem; }
        .secret { font-size: 1.1rem; }
        .hint { color: var(--muted); font-size: .9rem; }
        .url { font-family: ui-monospace, monospace; }
        small { color: var(--muted); font-weight: 400; }
        """
}
