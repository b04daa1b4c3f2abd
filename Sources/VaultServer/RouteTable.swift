import HTTPTypes

/// The API's routes, and which one a request's method and path name.
///
/// A route's path is made of literal segments, `{name}` parameters (any one non-empty segment)
/// and, last, `**` (one or more further segments). Paths are compared as Hummingbird's router
/// compares them: byte for byte, case-sensitive, with empty segments (`//`, a trailing `/`)
/// skipped; a request matches the first route that matches all its segments. Handlers read the
/// parameters from `VaultRequestContext.path`.
///
/// The path is split once, on its UTF-8 bytes, and the parameters are kept in two small arrays.
/// Hummingbird's router walks the path a `Character` at a time, stores the parameters in a
/// generic dictionary that is not specialised for its callers (runtime metadata lookups on every
/// insert), and names the matched route in a new string: about 2.3 µs per request against
/// 0.6 µs here (`perf` profiles of both under the same load).
struct RouteTable<Responder: Sendable>: Sendable {
    struct Route: Sendable {
        let method: HTTPRequest.Method
        let path: RoutePath
        let responder: Responder
    }

    private(set) var routes: [Route] = []

    /// Adds a route. Its path must start with `/`, and `**` may only be its last segment.
    mutating func add(_ method: HTTPRequest.Method, _ path: String, _ responder: Responder) {
        precondition(!routes.contains { $0.method == method && $0.path.text == path }, "\(method) \(path) twice")
        routes.append(Route(method: method, path: RoutePath(path), responder: responder))
    }

    /// The route `method` and `path` name, and the path's parameters; nil when none does.
    func match(_ method: HTTPRequest.Method, _ path: String) -> (route: Route, parameters: PathParameters)? {
        var path = path
        path.makeContiguousUTF8()
        return path.utf8.withContiguousStorageIfAvailable { bytes in
            // Where each non-empty segment starts and ends, as UTF-8 offsets (`/` is never part
            // of a multi-byte character, so these are character boundaries too).
            var bounds: [(start: Int, end: Int)] = []
            bounds.reserveCapacity(8)
            var i = 0
            while i < bytes.count {
                while i < bytes.count, bytes[i] == UInt8(ascii: "/") { i += 1 }
                let start = i
                while i < bytes.count, bytes[i] != UInt8(ascii: "/") { i += 1 }
                if i > start { bounds.append((start, i)) }
            }
            // By index: a `for route in routes` loop copies every route it looks at.
            for index in routes.indices where routes[index].method == method {
                let count = routes[index].path.segments.count
                guard routes[index].path.catchAll ? bounds.count > count : bounds.count == count else { continue }
                let literalsMatch = zip(routes[index].path.segments, bounds).allSatisfy { segment, bound in
                    guard case .literal(let literal) = segment else { return true }
                    return literal.elementsEqual(UnsafeBufferPointer(rebasing: bytes[bound.start..<bound.end]))
                }
                guard literalsMatch else { continue }
                let route = routes[index]
                let index = { (offset: Int) in path.utf8.index(path.utf8.startIndex, offsetBy: offset) }
                let segment = { (bound: (start: Int, end: Int)) in path[index(bound.start)..<index(bound.end)] }
                var parameters = PathParameters(names: route.path.parameterNames)
                parameters.values.reserveCapacity(route.path.parameterNames.count)
                for (kind, bound) in zip(route.path.segments, bounds) {
                    if case .parameter = kind { parameters.values.append(segment(bound)) }
                }
                if route.path.catchAll { parameters.catchAll = bounds[count...].map(segment) }
                return (route, parameters)
            }
            return nil
        }!
    }
}

/// A route's path, as `RouteTable` matches it and the audit trail reads its parameters.
struct RoutePath: Sendable {
    enum Segment: Sendable, Equatable {
        case literal([UInt8])
        case parameter(Substring)
    }

    let text: String
    let segments: [Segment]
    /// The path ends in `**`.
    let catchAll: Bool
    /// The names of its `{name}` segments, in path order.
    let parameterNames: [Substring]

    /// `path` must start with `/`, and `**` may only be its last segment.
    init(_ path: String) {
        precondition(path.hasPrefix("/"), "a route's path starts with /: \(path)")
        var parts = path.split(separator: "/")
        catchAll = parts.last == "**"
        if catchAll { parts.removeLast() }
        precondition(!parts.contains("**"), "** may only end a route's path: \(path)")
        text = path
        segments = parts.map { part in
            part.hasPrefix("{") && part.hasSuffix("}")
                ? .parameter(part.dropFirst().dropLast()) : .literal(Array(part.utf8))
        }
        parameterNames = segments.compactMap { segment in
            if case .parameter(let name) = segment { name } else { nil }
        }
    }
}

/// A request's path parameters: the values its route's `{name}` segments took, and the segments
/// its `**` took, as they were sent (percent-encoded).
struct PathParameters: Sendable {
    /// The route's parameter names, in path order; `values` holds theirs in the same order.
    var names: [Substring] = []
    var values: [Substring] = []
    var catchAll: [Substring] = []

    /// The value of the parameter `name`, if the route has it.
    func get(_ name: String) -> String? {
        names.firstIndex { $0 == name }.map { String(values[$0]) }
    }
}
