//! The milter: one small callback per stage, each pulling milter macros and header values
//! into the connection's [`Session`] and leaving the decisions to [`crate::chain`].

use crate::chain::{self, Analysis, LiveHop, LiveSource, LiveTls};
use crate::config::Config;
use crate::header::{self, HEADER_NAME, PolicyTag};
use crate::hop::TlsClass;
use crate::policy::{self, Action, Envelope, Reply, Rule};
use indymilter::{
    Actions, Callbacks, ContextActions, MacroStage, NegotiateContext, ProtoOpts, SetErrorReply, SocketInfo, SmtpReply, Status,
};
use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// Milter macros requested per stage when the MTA accepts macro requests. A request
/// replaces the MTA's own list for that stage, so each list names everything used there.
const REQUESTED_MACROS: [(MacroStage, &str); 5] = [
    (MacroStage::Connect, "j _ {daemon_name} {client_addr}"),
    (MacroStage::Helo, "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer} {verify}"),
    (
        MacroStage::Mail,
        "i {auth_type} {auth_authen} {mail_addr} {tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer} {verify}",
    ),
    (MacroStage::Data, "i"),
    (MacroStage::Eom, "i"),
];

/// Stages whose reply the milter never needs, skipped when the MTA allows it. RCPT is among
/// them only when no policy rule is configured: rules reject, tempfail or defer single
/// recipients there.
const NOREPLY_STAGES: ProtoOpts =
    ProtoOpts::NOREPLY_CONNECT.union(ProtoOpts::NOREPLY_HELO).union(ProtoOpts::NOREPLY_MAIL).union(ProtoOpts::NOREPLY_HEADER);

/// State shared by every connection: the configuration in force and the number of mail
/// transactions in progress (shutdown waits for it to reach zero).
pub struct Shared {
    config: RwLock<Arc<Config>>,
    transactions: watch::Sender<usize>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self { config: RwLock::new(Arc::new(config)), transactions: watch::Sender::new(0) })
    }

    /// Returns the configuration new connections take.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(config) => Arc::clone(&config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the configuration for connections that start from now on.
    pub fn replace_config(&self, config: Config) {
        let config = Arc::new(config);
        match self.config.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }

    /// Waits until no mail transaction is in progress.
    pub async fn transactions_done(&self) {
        let mut receiver = self.transactions.subscribe();
        let _ = receiver.wait_for(|count| *count == 0).await;
    }

    pub fn transactions_in_progress(&self) -> usize {
        *self.transactions.borrow()
    }
}

/// Counts one mail transaction as in progress for as long as it lives.
struct TransactionGuard(Arc<Shared>);

impl TransactionGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.transactions.send_modify(|count| *count += 1);
        Self(Arc::clone(shared))
    }
}

impl Drop for TransactionGuard {
    fn drop(&mut self) {
        self.0.transactions.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// One MTA connection.
pub struct Session {
    config: Arc<Config>,
    shared: Arc<Shared>,
    noreply: ProtoOpts,
    macro_requests: bool,
    client_ip: Option<IpAddr>,
    /// True for mail the MTA submits itself (Postfix's non_smtpd_milters, a command-line
    /// submission): it never touched a network and is never rejected.
    local_submission: bool,
    live: LiveTls,
    message: Option<Message>,
}

/// The message in progress, from MAIL to end of message.
struct Message {
    /// Received field values, topmost first, at most [`chain::MAX_ANALYSED_FIELDS`].
    received: Vec<String>,
    received_total: usize,
    /// Incoming copies of our own header (forged, as only this milter writes it).
    forged: i32,
    /// The envelope sender without angle brackets; empty for the null sender.
    sender: String,
    authenticated: bool,
    /// The rule of the first accepted recipient, which all recipients of the transaction share.
    rule: Option<Rule>,
    _transaction: TransactionGuard,
}

impl Session {
    fn new(shared: &Arc<Shared>) -> Self {
        Self {
            config: shared.config(),
            shared: Arc::clone(shared),
            noreply: ProtoOpts::empty(),
            macro_requests: false,
            client_ip: None,
            local_submission: false,
            live: LiveTls::default(),
            message: None,
        }
    }

    /// Forgets the SMTP connection: client, live TLS state and any message in progress. The
    /// negotiated options and the configuration snapshot stay for the next connection.
    fn end_connection(&mut self) {
        self.client_ip = None;
        self.local_submission = false;
        self.live = LiveTls::default();
        self.message = None;
    }

    /// Returns `Noreply` where it was negotiated for this stage, else `Continue`.
    fn proceed(&self, stage: ProtoOpts) -> Status {
        if self.noreply.contains(stage) { Status::Noreply } else { Status::Continue }
    }
}

fn macro_value(macros: &indymilter::Macros, name: &CStr) -> Option<String> {
    macros
        .get(name)
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| !value.is_empty())
}

fn queue_id(macros: &indymilter::Macros) -> String {
    macro_value(macros, c"i").map(|id| id.replace(|c: char| !c.is_ascii_graphic(), "?")).unwrap_or_else(|| "NONE".into())
}

/// Builds the callbacks of one milter whose connections share `shared`.
pub fn callbacks(shared: Arc<Shared>) -> Callbacks<Session> {
    let negotiate_shared = Arc::clone(&shared);

    Callbacks::new()
        .on_negotiate(move |cx, actions, opts| {
            let shared = Arc::clone(&negotiate_shared);
            Box::pin(async move { handle_negotiate(&shared, cx, actions, opts) })
        })
        .on_connect(|cx, hostname, socket_info| Box::pin(async move { handle_connect(cx, &hostname, socket_info) }))
        .on_helo(|cx, _hostname| {
            Box::pin(async move { cx.data.as_ref().map_or(Status::Continue, |session| session.proceed(ProtoOpts::NOREPLY_HELO)) })
        })
        .on_mail(|cx, args| Box::pin(async move { handle_mail(cx, &args) }))
        .on_rcpt(|cx, args| Box::pin(async move { handle_rcpt(cx, &args) }))
        .on_header(|cx, name, value| Box::pin(async move { handle_header(cx, name, value) }))
        .on_eom(|cx| Box::pin(handle_eom(cx)))
        .on_abort(|cx| {
            Box::pin(async move {
                if let Some(session) = cx.data.as_mut() {
                    session.message = None;
                }
                Status::Continue
            })
        })
        .on_close(|cx| {
            Box::pin(async move {
                // After QUIT_NC the MTA reuses this milter connection for its next client, so
                // only the state of the SMTP connection ends here.
                if let Some(session) = cx.data.as_mut() {
                    session.end_connection();
                }
                Status::Continue
            })
        })
}

fn handle_negotiate(shared: &Arc<Shared>, cx: &mut NegotiateContext<Session>, actions: Actions, opts: ProtoOpts) -> Status {
    let mut session = Session::new(shared);

    // Ask for exactly the actions used: header insertion and deletion, and quarantine when
    // a rule may quarantine.
    let mut wanted = Actions::ADD_HEADER | Actions::CHANGE_HEADER;
    if session.config.policies.iter().any(|rule| rule.action == Action::Quarantine) {
        wanted |= Actions::QUARANTINE;
    }
    cx.requested_actions = wanted & actions;
    if !actions.contains(Actions::ADD_HEADER | Actions::CHANGE_HEADER) {
        warn!("NONE: the MTA does not allow adding and changing headers; messages cannot be tagged");
    }

    if actions.contains(Actions::REQUEST_MACROS) {
        cx.requested_actions |= Actions::REQUEST_MACROS;
        for (stage, names) in REQUESTED_MACROS {
            if let Ok(names) = CString::new(names) {
                cx.requested_macros.insert(stage, names);
            }
        }
        session.macro_requests = true;

        // The TLS macros are requested at MAIL too, so the HELO stage adds nothing but a
        // packet per connection. Without macro requests it stays: MTAs send the TLS macros
        // at HELO by default.
        if opts.contains(ProtoOpts::NO_HELO) {
            cx.requested_opts |= ProtoOpts::NO_HELO;
            cx.requested_macros.remove(&MacroStage::Helo);
        }
    }

    // Without policy rules nothing is decided at RCPT (the message starts at MAIL and no RCPT
    // macro is requested), so the stage is declined, which saves a packet per recipient.
    // NOREPLY_RCPT stays requested. It is moot once the MTA skips the stage, and it keeps a
    // stray RCPT unanswered, as before.
    let mut noreply = NOREPLY_STAGES;
    if session.config.policies.is_empty() {
        noreply |= ProtoOpts::NOREPLY_RCPT;
        cx.requested_opts |= opts & ProtoOpts::NO_RCPT;
    }
    session.noreply = noreply & opts;
    cx.requested_opts |= session.noreply;

    cx.data = Some(session);
    Status::Continue
}

fn handle_connect(cx: &mut indymilter::Context<Session>, hostname: &CStr, socket_info: SocketInfo) -> Status {
    let Some(session) = cx.data.as_mut() else {
        return Status::Continue;
    };

    // Postfix's cleanup server presents mail from non_smtpd_milters as a connection from
    // localhost, 127.0.0.1, port 0; no SMTP client connects from port 0.
    (session.client_ip, session.local_submission) = match socket_info {
        SocketInfo::Inet(addr) => (Some(addr.ip()), addr.port() == 0 && addr.ip().is_loopback()),
        SocketInfo::Unix(_) => (None, false),
        SocketInfo::Unknown => (None, true),
    };
    if session.local_submission {
        debug!("NONE: local submission from {:?}: policies never reject it", hostname);
    }
    session.proceed(ProtoOpts::NOREPLY_CONNECT)
}

fn handle_mail(cx: &mut indymilter::Context<Session>, args: &[CString]) -> Status {
    let Some(session) = cx.data.as_mut() else {
        return Status::Continue;
    };

    // The live hop is judged from the TLS macros of this MAIL stage, or of the HELO stage
    // before it (Macros::get returns the latest stage that has the macro).
    let macros = &cx.macros;
    session.live = LiveTls {
        client_ip: session.client_ip,
        tls_version: macro_value(macros, c"{tls_version}"),
        cipher: macro_value(macros, c"{cipher}"),
        cipher_bits: macro_value(macros, c"{cipher_bits}"),
        cert_subject: macro_value(macros, c"{cert_subject}"),
        cert_issuer: macro_value(macros, c"{cert_issuer}"),
        verify: macro_value(macros, c"{verify}"),
        tls_macros_requested: session.macro_requests,
        local_submission: session.local_submission,
    };

    session.message = Some(Message {
        received: Vec::new(),
        received_total: 0,
        forged: 0,
        sender: envelope_address(args),
        authenticated: macro_value(macros, c"{auth_type}").is_some(),
        rule: None,
        _transaction: TransactionGuard::new(&session.shared),
    });

    debug!(
        "{}: live TLS macros: tls_version={:?} cipher={:?} bits={:?} cert_subject={:?} verify={:?}",
        queue_id(macros),
        session.live.tls_version,
        session.live.cipher,
        session.live.cipher_bits,
        session.live.cert_subject,
        session.live.verify,
    );
    session.proceed(ProtoOpts::NOREPLY_MAIL)
}

/// Returns the address of a MAIL or RCPT argument list without angle brackets.
fn envelope_address(args: &[CString]) -> String {
    let first = args.first().map(|arg| arg.to_string_lossy()).unwrap_or_default();
    first.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Judges the live hop of a session from its milter macros alone.
fn live_hop(session: &Session) -> LiveHop {
    let analysis = chain::analyse(&[], 0, LiveSource::Macros(&session.live), &session.config.trust);
    analysis.live.unwrap_or_else(|| LiveHop {
        evidence: "unknown".into(),
        class: TlsClass::Unknown,
        cipher: None,
        bits: None,
        verify: None,
        reason: "no live hop".into(),
    })
}

fn set_reply(reply: &mut SmtpReply, rule_reply: Option<&Reply>) {
    if let Some(rule_reply) = rule_reply {
        let _ = reply.set_error_reply(&rule_reply.code, rule_reply.enhanced.as_deref(), [rule_reply.escaped_text()]);
    }
}

fn handle_rcpt(cx: &mut indymilter::Context<Session>, args: &[CString]) -> Status {
    let Some(session) = cx.data.as_mut() else {
        return Status::Continue;
    };
    let proceed = session.proceed(ProtoOpts::NOREPLY_RCPT);
    let config = Arc::clone(&session.config);
    if config.policies.is_empty() {
        return proceed;
    }

    let queue_id = queue_id(&cx.macros);
    let recipient = envelope_address(args);
    let live = live_hop(session);
    let local_submission = session.local_submission;
    let Some(message) = session.message.as_mut() else {
        return proceed;
    };

    let envelope = Envelope {
        sender: &message.sender,
        recipient: &recipient,
        client: session.client_ip,
        authenticated: message.authenticated,
    };
    let rule = policy::select(&config.policies, &config.default_policy, &envelope);

    // Mail the MTA submits itself is never rejected at RCPT: Postfix would keep it queued.
    if local_submission {
        message.rule.get_or_insert_with(|| rule.clone());
        return proceed;
    }

    if rule.rejects_at_rcpt(&live, config.dry_run) {
        let reason = rule.check_live(&live).err().unwrap_or_default();
        info!("{queue_id}: recipient <{}> {}ed by policy {}: {reason}", recipient.escape_debug(), rule.action.as_str(), rule.name);
        set_reply(&mut cx.reply, rule.reply.as_ref());
        return if rule.action == Action::Reject { Status::Reject } else { Status::Tempfail };
    }

    match &message.rule {
        None => message.rule = Some(rule.clone()),
        Some(first) if first.conflicts_with(rule, config.dry_run) => {
            info!(
                "{queue_id}: recipient <{}> under policy {} deferred: the transaction is under policy {}",
                recipient.escape_debug(),
                rule.name,
                first.name,
            );
            let _ = cx.reply.set_error_reply("452", Some("4.5.3"), ["Recipient needs another TLS policy, send it in a new transaction"]);
            return Status::Tempfail;
        }
        Some(_) => {}
    }
    proceed
}

fn handle_header(cx: &mut indymilter::Context<Session>, name: CString, value: CString) -> Status {
    let Some(session) = cx.data.as_mut() else {
        return Status::Continue;
    };
    let status = session.proceed(ProtoOpts::NOREPLY_HEADER);
    let Some(message) = session.message.as_mut() else {
        return status;
    };

    let name = name.to_bytes();
    if name.eq_ignore_ascii_case(b"Received") {
        message.received_total += 1;
        if message.received.len() < chain::MAX_ANALYSED_FIELDS {
            message.received.push(bounded_text(value.to_bytes()));
        }
    } else if name.eq_ignore_ascii_case(HEADER_NAME.as_bytes()) {
        message.forged = message.forged.saturating_add(1);
    }

    status
}

/// Converts a header value to text, keeping at most one octet more than the analysis reads,
/// so an oversized field is still seen as oversized without being stored whole.
fn bounded_text(bytes: &[u8]) -> String {
    let kept = &bytes[..bytes.len().min(chain::MAX_FIELD_LEN + 1)];
    String::from_utf8_lossy(kept).into_owned()
}

async fn handle_eom(cx: &mut indymilter::EomContext<Session>) -> Status {
    let queue_id = queue_id(&cx.macros);
    let Some(session) = cx.data.as_mut() else {
        error!("{queue_id}: end of message without a negotiated session; message tempfailed");
        return Status::Tempfail;
    };
    let Some(message) = session.message.take() else {
        error!("{queue_id}: end of message without MAIL; message tempfailed");
        return Status::Tempfail;
    };

    // Decided before the first action is sent: the analysis and the Received fields are freed
    // here, not held while the milter waits on the MTA. The transaction stays counted until
    // the actions are sent.
    let plan = plan_eom(&queue_id, session, &message);
    let Message { _transaction: transaction, .. } = message;

    let (forged, value, quarantine) = match plan {
        EomPlan::Refuse { status, reply } => {
            set_reply(&mut cx.reply, reply.as_ref());
            return status;
        }
        EomPlan::Tag { forged, value, quarantine } => (forged, value, quarantine),
    };

    // Forged copies go first, highest occurrence index first, so no deletion shifts the
    // index of one still to come, whether or not the MTA renumbers after a deletion.
    for index in (1..=forged).rev() {
        if let Err(error) = cx.actions.change_header(HEADER_NAME, index, None::<CString>).await {
            error!("{queue_id}: failed to delete forged {HEADER_NAME} field {index}: {error}; message tempfailed");
            return Status::Tempfail;
        }
    }

    let Ok(value) = CString::new(value) else {
        error!("{queue_id}: rendered header contains a NUL byte; message tempfailed");
        return Status::Tempfail;
    };
    if let Err(error) = cx.actions.insert_header(0, HEADER_NAME, value).await {
        error!("{queue_id}: failed to insert {HEADER_NAME}: {error}; message tempfailed");
        return Status::Tempfail;
    }

    if let Some(reason) = quarantine
        && let Err(error) = cx.actions.quarantine(reason).await
    {
        error!("{queue_id}: failed to quarantine: {error}; message tempfailed");
        return Status::Tempfail;
    }

    drop(transaction);
    Status::Continue
}

/// The outcome of end of message: the reply, or the header actions to send.
enum EomPlan {
    /// Reject or tempfail the message, with the rule's reply if it has one.
    Refuse { status: Status, reply: Option<Reply> },
    /// Delete `forged` copies of our header, insert `value` on top, and quarantine the message
    /// with the reason, if one is given.
    Tag { forged: i32, value: String, quarantine: Option<String> },
}

/// Analyses the message, applies its policy rule, logs the outcome and returns the actions.
fn plan_eom(queue_id: &str, session: &Session, message: &Message) -> EomPlan {
    let config = &session.config;
    let fields: Vec<&str> = message.received.iter().map(String::as_str).collect();
    let analysis = chain::analyse(&fields, message.received_total, LiveSource::Macros(&session.live), &config.trust);

    let rule = message.rule.as_ref().unwrap_or(&config.default_policy);
    let mut outcome = policy::decide(rule, &analysis, false, config.dry_run);
    if session.local_submission && outcome.action != Action::Tag && !outcome.dry_run {
        warn!("{queue_id}: local submission fails policy {}: tagged, not {}", rule.name, outcome.action.as_str());
        outcome.action = Action::Tag;
    }
    let enforce = !outcome.dry_run && outcome.action != Action::Tag;

    log_outcome(queue_id, &analysis, rule, &outcome, message.forged);

    if enforce && matches!(outcome.action, Action::Reject | Action::Tempfail) {
        let status = if outcome.action == Action::Reject { Status::Reject } else { Status::Tempfail };
        return EomPlan::Refuse { status, reply: rule.reply.clone() };
    }

    let tag = PolicyTag { rule: rule.name.clone(), action: outcome.action.as_str(), dry_run: outcome.dry_run };
    let show_policy = !config.policies.is_empty();
    let comment = outcome.reason.clone().or_else(|| header::comment_for(&analysis, false));
    let value = header::render(&config.authserv_id, &analysis, show_policy.then_some(&tag), comment.as_deref());

    let quarantine = (enforce && outcome.action == Action::Quarantine)
        .then(|| format!("tls-milter policy {}: {}", rule.name, outcome.reason.as_deref().unwrap_or("requirements not met")));
    EomPlan::Tag { forged: message.forged, value, quarantine }
}

/// Logs the one info line per message, and the reasons at debug.
fn log_outcome(queue_id: &str, analysis: &Analysis<'_>, rule: &Rule, outcome: &policy::Outcome, forged: i32) {
    let live = analysis.live.as_ref().map_or("unknown", |live| live.evidence.as_str());
    let counts = &analysis.counts;
    let dry_run = if outcome.dry_run && outcome.action != Action::Tag { " (dry run, not done)" } else { "" };
    info!(
        "{queue_id}: tls={} live={live} policy={} action={}{dry_run} hops={} encrypted={} plaintext={} internal={} unknown={} claimed={} forged_removed={forged}",
        analysis.verdict,
        rule.name,
        outcome.action.as_str(),
        counts.hops,
        counts.encrypted,
        counts.plaintext,
        counts.internal,
        counts.unknown,
        counts.claimed,
    );

    if let Some(reason) = &outcome.reason {
        debug!("{queue_id}: policy {}: {reason}", rule.name);
    }
    if let Some(live) = &analysis.live {
        debug!("{queue_id}: live hop: {}", live.reason);
    }
    for hop in &analysis.hops {
        debug!("{queue_id}: Received field {}: {} ({}): {}", hop.position, hop.tls, hop.line.claim, hop.line.evidence);
    }
}
