//! The seed's five features on one packet's payload (BRIEF §4 (ii)); pure functions over bytes
//! that never panic. Flow state (which side is the server, a response body that starts in the
//! next segment) lives in [`crate::audit`].

/// The five features, as `hostcheck --json` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// 1: HTTP GET/POST of an executable (by URL or by a PE/ELF body).
    HttpExe,
    /// 2: IRC commands on a port ≥ 1024.
    Irc,
    /// 3: connections to 135-139, 445, 1433-1434 on Internet addresses.
    SmbSqlPorts,
    /// 4: DNS NXDOMAIN or SERVFAIL.
    DnsError,
    /// 5: SMTP error replies.
    SmtpError,
}

impl Feature {
    /// The name used on output.
    pub fn name(self) -> &'static str {
        match self {
            Feature::HttpExe => "http-exe",
            Feature::Irc => "irc",
            Feature::SmbSqlPorts => "smb-sql-ports",
            Feature::DnsError => "dns-error",
            Feature::SmtpError => "smtp-error",
        }
    }
}

/// Ports of feature 3: NetBIOS/RPC (135-139), SMB (445), MS SQL (1433-1434), the ports the
/// seed's bots scanned and attacked.
pub fn is_smb_sql_port(p: u16) -> bool {
    matches!(p, 135..=139 | 445 | 1433..=1434)
}

/// An HTTP request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The request target as sent (lossy UTF-8, at most 256 bytes).
    pub uri: String,
}

/// A GET or POST request at the start of a payload.
pub fn http_request(p: &[u8]) -> Option<HttpRequest> {
    let (method, rest) = if let Some(r) = p.strip_prefix(b"GET ") {
        ("GET", r)
    } else if let Some(r) = p.strip_prefix(b"POST ") {
        ("POST", r)
    } else {
        return None;
    };
    let end = rest
        .iter()
        .position(|&c| c == b' ' || c == b'\r' || c == b'\n')?;
    let target = &rest[..end.min(256)];
    // "HTTP/" must follow, so random text starting with GET is not taken for HTTP.
    if !rest[end..].starts_with(b" HTTP/") {
        return None;
    }
    Some(HttpRequest {
        method,
        uri: String::from_utf8_lossy(target).into_owned(),
    })
}

/// Extensions of executable files a bot fetches (the seed counted `*.exe`; droppers also use
/// these).
const EXE_EXTENSIONS: [&str; 7] = ["exe", "dll", "scr", "msi", "cpl", "pif", "sys"];

/// The path of a URL or a file name ends in an executable's extension (query and fragment
/// ignored, case-insensitive).
pub fn is_executable_name(uri: &str) -> bool {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_end_matches('"');
    match path.rsplit_once('.') {
        Some((_, ext)) => EXE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)),
        None => false,
    }
}

/// An HTTP response header found at the start of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Offset of the body in this payload, if the header ended inside it.
    pub body_offset: Option<usize>,
    /// `Transfer-Encoding: chunked`: the body starts with a chunk-size line.
    pub chunked: bool,
    /// The file name of `Content-Disposition`, if one.
    pub filename: Option<String>,
}

/// An HTTP/1.x status line and as much of the header as this payload holds.
pub fn http_response(p: &[u8]) -> Option<HttpResponse> {
    if !p.starts_with(b"HTTP/1.") || p.len() < 12 {
        return None;
    }
    let status = std::str::from_utf8(&p[9..12]).ok()?.parse().ok()?;
    let body_offset = find(p, b"\r\n\r\n").map(|i| i + 4);
    let head = &p[..body_offset.unwrap_or(p.len())];
    let mut chunked = false;
    let mut filename = None;
    for line in head.split(|&c| c == b'\n') {
        let line = String::from_utf8_lossy(line);
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if lower.starts_with("content-disposition:")
            && let Some(i) = lower.find("filename=")
        {
            let v = line[i + 9..].trim().trim_matches(['"', '\r', ';']);
            filename = Some(v.chars().take(256).collect());
        }
    }
    Some(HttpResponse {
        status,
        body_offset,
        chunked,
        filename,
    })
}

/// The body starts with an executable's header: `MZ` (DOS/PE) or `\x7fELF`. A chunked body's
/// first chunk-size line is skipped.
pub fn executable_magic(body: &[u8], chunked: bool) -> Option<&'static str> {
    let body = if chunked {
        let nl = body.iter().take(18).position(|&c| c == b'\n')?;
        &body[nl + 1..]
    } else {
        body
    };
    if body.starts_with(b"MZ") {
        Some("pe")
    } else if body.starts_with(b"\x7fELF") {
        Some("elf")
    } else {
        None
    }
}

/// The seed's IRC commands (feature 2).
const IRC_COMMANDS: [&str; 6] = ["USER", "NICK", "PING", "PONG", "MODE", "JOIN"];

/// The first of the seed's IRC commands at the start of a line of this payload (after an
/// optional `:prefix`), followed by a space or the line's end.
pub fn irc_command(p: &[u8]) -> Option<&'static str> {
    for line in p.split(|&c| c == b'\n').take(64) {
        let mut l = line.strip_suffix(b"\r").unwrap_or(line);
        if l.first() == Some(&b':') {
            let sp = l.iter().position(|&c| c == b' ')?;
            l = &l[sp + 1..];
        }
        for c in IRC_COMMANDS {
            if let Some(rest) = l.strip_prefix(c.as_bytes())
                && (rest.is_empty() || rest[0] == b' ')
            {
                return Some(c);
            }
        }
    }
    None
}

/// The seed's SMTP error texts (feature 5).
pub const SMTP_SEED_TEXTS: [&str; 4] = [
    "too many smtp sessions",
    "recipient address rejected",
    "user unknown",
    "message refused",
];

/// An SMTP error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpError {
    /// The reply code (4xx or 5xx).
    pub code: u16,
    /// The reply line (lossy UTF-8, at most 200 bytes).
    pub text: String,
    /// Which of the seed's four texts it contains, if any.
    pub seed_text: Option<&'static str>,
}

/// The first reply line of this payload that is an error: a 4xx or 5xx code (RFC 5321 §4.2),
/// or one of the seed's four texts whatever the code.
pub fn smtp_error(p: &[u8]) -> Option<SmtpError> {
    for line in p.split(|&c| c == b'\n').take(64) {
        if line.len() < 4 || !line[..3].iter().all(u8::is_ascii_digit) {
            continue;
        }
        if line[3] != b' ' && line[3] != b'-' && line[3] != b'\r' {
            continue;
        }
        let code = u16::from(line[0] - b'0') * 100
            + u16::from(line[1] - b'0') * 10
            + u16::from(line[2] - b'0');
        let text = String::from_utf8_lossy(&line[..line.len().min(200)])
            .trim_end()
            .to_string();
        let lower = text.to_ascii_lowercase();
        let seed_text = SMTP_SEED_TEXTS.iter().copied().find(|t| lower.contains(t));
        if (400..600).contains(&code) || seed_text.is_some() {
            return Some(SmtpError {
                code,
                text,
                seed_text,
            });
        }
    }
    None
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_requests_and_executable_names() {
        let r = http_request(b"GET /a/b.EXE?x=1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!((r.method, r.uri.as_str()), ("GET", "/a/b.EXE?x=1"));
        assert!(is_executable_name(&r.uri));
        assert!(!is_executable_name("/solar.php"));
        assert!(!is_executable_name("/exe"));
        assert!(is_executable_name("\"phn34ycjtghm.exe\""));
        assert!(http_request(b"GET /x").is_none());
        assert!(http_request(b"GETTING things").is_none());
        assert_eq!(http_request(b"POST / HTTP/1.0\r\n").unwrap().method, "POST");
    }

    #[test]
    fn responses_give_body_and_file_name() {
        let p = b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"x.exe\"\r\n\r\nMZ\x90\x00";
        let r = http_response(p).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.filename.as_deref(), Some("x.exe"));
        let body = &p[r.body_offset.unwrap()..];
        assert_eq!(executable_magic(body, false), Some("pe"));
        assert_eq!(executable_magic(b"1a2b\r\n\x7fELF..", true), Some("elf"));
        assert_eq!(executable_magic(b"<html>", false), None);
        assert_eq!(
            http_response(b"HTTP/1.1 404 Not Found\r\nX: y")
                .unwrap()
                .body_offset,
            None
        );
    }

    #[test]
    fn irc_commands_with_and_without_prefix() {
        assert_eq!(
            irc_command(b"NICK bot123\r\nUSER a b c :d\r\n"),
            Some("NICK")
        );
        assert_eq!(irc_command(b":srv.example PING :123\r\n"), Some("PING"));
        assert_eq!(irc_command(b"PRIVMSG #x :hi\r\n"), None);
        assert_eq!(irc_command(b"NICKNAME x"), None);
        assert_eq!(irc_command(b"JOIN"), Some("JOIN"));
    }

    #[test]
    fn smtp_errors_by_code_and_by_seed_text() {
        let e =
            smtp_error(b"250 ok\r\n550 5.1.1 <a@b>: Recipient address rejected: User unknown\r\n")
                .unwrap();
        assert_eq!(e.code, 550);
        assert_eq!(e.seed_text, Some("recipient address rejected"));
        assert_eq!(
            smtp_error(b"500 Command unrecognized\r\n").unwrap().code,
            500
        );
        assert_eq!(
            smtp_error(b"421 Too many SMTP sessions for this host\r\n")
                .unwrap()
                .seed_text,
            Some("too many smtp sessions")
        );
        assert!(smtp_error(b"220 mx ESMTP\r\n250-PIPELINING\r\n354 go ahead\r\n").is_none());
        assert!(smtp_error(b"GET / HTTP/1.1\r\n").is_none());
    }

    #[test]
    fn ports_of_feature_three() {
        for p in [135, 137, 139, 445, 1433, 1434] {
            assert!(is_smb_sql_port(p));
        }
        for p in [134, 140, 444, 446, 1432, 1435, 80] {
            assert!(!is_smb_sql_port(p));
        }
    }

    proptest::proptest! {
        #[test]
        fn payload_parsers_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = http_request(&b);
            let _ = http_response(&b);
            let _ = executable_magic(&b, true);
            let _ = irc_command(&b);
            let _ = smtp_error(&b);
        }
    }
}
