import Foundation

/// JSON text of `value` as the project writes it: keys in snake_case and sorted, so the same
/// value gives the same text. Numbers that are not finite must be mapped to nil first (`finite`):
/// JSON has no NaN or infinity. With `convertingKeys` false the keys are written as they are
/// (the conversion would also rewrite the keys of dictionaries, such as tag names).
public func jsonText<T: Encodable>(_ value: T, pretty: Bool = false, convertingKeys: Bool = true)
    throws -> String
{
    let encoder = JSONEncoder()
    if convertingKeys { encoder.keyEncodingStrategy = .convertToSnakeCase }
    encoder.outputFormatting =
        pretty
        ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        : [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// `x`, or nil when it is NaN or infinite (written as JSON null).
public func finite<F: BinaryFloatingPoint>(_ x: F?) -> F? {
    x.flatMap { $0.isFinite ? $0 : nil }
}

/// An optional that `jsonText` writes as `null` when nil (synthesized `Encodable` leaves a nil
/// optional out), for outputs whose readers expect every key.
@propertyWrapper
public struct NullWhenNil<Value: Encodable>: Encodable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue {
            try container.encode(wrappedValue)
        } else {
            try container.encodeNil()
        }
    }
}
