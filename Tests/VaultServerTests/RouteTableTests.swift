import HTTPTypes
import Testing

@testable import VaultServer

@Suite("Server: the route table")
struct RouteTableTests {
    static let table: RouteTable<String> = {
        var table = RouteTable<String>()
        table.add(.get, "/v1/models", "list")
        table.add(.get, "/v1/models/{namespace}/{name}", "show")
        table.add(.get, "/v1/models/{namespace}/{name}/versions/{version}/files/**", "download")
        table.add(.head, "/v1/models/{namespace}/{name}/versions/{version}/files/**", "head")
        table.add(.delete, "/v1/models/{namespace}/{name}/versions/{version}", "remove")
        table.add(.get, "/v1/audit/proof/inclusion", "inclusion")
        table.add(.get, "/metrics", "metrics")
        return table
    }()

    func match(_ method: HTTPRequest.Method, _ path: String) -> (String, [String: String], [String])? {
        guard let (route, parameters) = Self.table.match(method, path) else { return nil }
        var named: [String: String] = [:]
        for name in parameters.names { named[String(name)] = parameters.get(String(name)) }
        #expect(parameters.values.count == parameters.names.count)
        return (route.responder, named, parameters.catchAll.map(String.init))
    }

    @Test("literal segments and parameters")
    func parameters() throws {
        let show = try #require(match(.get, "/v1/models/acme/llama-7b"))
        #expect(show.0 == "show")
        #expect(show.1 == ["namespace": "acme", "name": "llama-7b"])
        #expect(show.2 == [])
        #expect(match(.get, "/v1/models")?.0 == "list")
        #expect(match(.get, "/metrics")?.0 == "metrics")
        #expect(match(.get, "/v1/audit/proof/inclusion")?.0 == "inclusion")
        let remove = try #require(match(.delete, "/v1/models/acme/small/versions/3"))
        #expect(remove.0 == "remove")
        #expect(remove.1 == ["namespace": "acme", "name": "small", "version": "3"])
    }

    @Test("** takes one or more further segments, as they were sent")
    func catchAll() throws {
        let one = try #require(match(.get, "/v1/models/acme/small/versions/1/files/model.safetensors"))
        #expect(one.0 == "download")
        #expect(one.1 == ["namespace": "acme", "name": "small", "version": "1"])
        #expect(one.2 == ["model.safetensors"])
        let nested = try #require(match(.head, "/v1/models/acme/small/versions/1/files/sub/dir%20x/a.bin"))
        #expect(nested.0 == "head")
        #expect(nested.2 == ["sub", "dir%20x", "a.bin"])
        #expect(match(.get, "/v1/models/acme/small/versions/1/files") == nil)
        #expect(match(.get, "/v1/models/acme/small/versions/1/files/") == nil)
    }

    @Test("empty segments are skipped, as Hummingbird's router skips them")
    func emptySegments() {
        #expect(match(.get, "/v1/models/")?.0 == "list")
        #expect(match(.get, "//v1//models///acme/small/")?.1 == ["namespace": "acme", "name": "small"])
    }

    @Test("no route: another method, another length, another literal, another case")
    func noRoute() {
        #expect(match(.post, "/v1/models/acme/small") == nil)
        #expect(match(.head, "/v1/models/acme/small") == nil)
        #expect(match(.get, "/v1/models/acme") == nil)
        #expect(match(.get, "/v1/models/acme/small/extra") == nil)
        #expect(match(.get, "/v1/Models/acme/small") == nil)
        #expect(match(.get, "/v1/audit/proof/inclusio") == nil)
        #expect(match(.get, "/") == nil)
        #expect(match(.get, "") == nil)
    }

    @Test("multi-byte characters in parameters arrive whole")
    func unicode() throws {
        let show = try #require(match(.get, "/v1/models/acmé/modèle-π"))
        #expect(show.1 == ["namespace": "acmé", "name": "modèle-π"])
    }
}
