import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads a page with an XML parser and keeps, per chart (`data-chart`), the elements inside it.
public final class ChartCollector: NSObject, XMLParserDelegate {
    public struct Chart {
        public var kind: String
        public var elements: [(name: String, attributes: [String: String])] = []
    }
    public private(set) var charts: [Chart] = []
    private var depthInChart = 0
    /// All the text of the page.
    public private(set) var text = ""

    public func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
        qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if depthInChart == 0, let kind = attributes["data-chart"] {
            charts.append(Chart(kind: kind))
            depthInChart = 1
        } else if depthInChart > 0 {
            depthInChart += 1
        }
        if depthInChart > 0 { charts[charts.count - 1].elements.append((name, attributes)) }
    }

    public func parser(
        _ parser: XMLParser, didEndElement name: String, namespaceURI: String?,
        qualifiedName: String?
    ) {
        if depthInChart > 0 { depthInChart -= 1 }
    }

    public func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    /// Parses `html`; throws when it is not well-formed.
    public static func read(_ html: String) throws -> ChartCollector {
        let collector = ChartCollector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        guard parser.parse() else {
            throw NSError(
                domain: "report", code: 1,
                userInfo: [
                    NSLocalizedDescriptionKey:
                        "\(parser.parserError.map { "\($0)" } ?? "parse error") at line \(parser.lineNumber)"
                ])
        }
        return collector
    }
}
