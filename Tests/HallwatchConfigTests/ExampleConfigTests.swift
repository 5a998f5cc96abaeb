import Foundation
import HallwatchCore
import Testing

@testable import HallwatchConfig

@Test("The shipped example configuration is valid and documents every key the schema knows")
func exampleConfigIsValidAndComplete() throws {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    let path = url.appendingPathComponent("Image/hallwatch.example.yaml").path
    let config = try ConfigLoader.load(path: path)
    #expect(config.box == "lincoln-es")
    #expect(config.cameras.map(\.id.rawValue) == ["lobby", "gym-east"])
    #expect(config.cameras[0].passwordFile == "/etc/hallwatch/secrets/lobby.password")
    let text = try String(contentsOfFile: path, encoding: .utf8)
    func keys(_ s: ConfigSchema) -> [String] {
        switch s {
        case .mapping(let m, _): return m.keys + m.values.flatMap(keys)
        case .sequence(let e, _): return keys(e)
        case .scalar: return []
        }
    }
    for key in Set(keys(ConfigSchema.root)) {
        #expect(text.contains("\(key)"), "example config does not mention \(key)")
    }
}
