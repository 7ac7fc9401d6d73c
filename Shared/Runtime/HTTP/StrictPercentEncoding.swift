import Foundation

/// Percent-encoding that leaves only RFC 3986's unreserved characters as they are: a path segment
/// or query value passed on from one service to another arrives exactly as encoded here (and as
/// signed), whatever the client sent.
public enum StrictPercentEncoding {
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

    public static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }
}
