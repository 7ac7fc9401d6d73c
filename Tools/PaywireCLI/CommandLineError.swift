/// A mistake in how the command was called, or a refusal it met: printed as one line
/// (`Error: …`) and exit status 1. ArgumentParser's `ValidationError` would print the whole usage
/// after it, which buries the one line that matters.
struct CommandLineError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
