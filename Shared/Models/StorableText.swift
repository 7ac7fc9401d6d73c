/// Text that came from outside (a processor's answer, an endpoint's response) as PostgreSQL's text
/// and jsonb can store it: NUL, which both refuse, becomes U+FFFD. Such text is recorded, never
/// refused, and one odd answer must never fail the write that records it (or others with it).
extension String {
    public var storable: String {
        utf8.contains(0) ? replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : self
    }
}
