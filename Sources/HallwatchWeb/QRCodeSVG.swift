import CQRencode
import Foundation
import HallwatchCore

/// A QR code (ISO/IEC 18004) made on the box by Debian's libqrencode, owned by this value: the C `QRcode` is
/// freed when it goes. Error correction level M (15 % of the code may be damaged — a phone screen photographed
/// from a squad car), byte mode, the smallest version that holds the text.
final class QRCode {
    /// Modules per side (21 for version 1 … 177 for version 40).
    let width: Int
    private let handle: UnsafeMutablePointer<QRcode>

    /// The longest text encoded, in UTF-8 bytes (a responder link is about 80).
    static let maxBytes = 512

    /// Encodes `text`.
    /// - Throws: ``Problem`` (`responder.qr`) when the text is empty or longer than ``maxBytes``, or
    ///   libqrencode fails (out of memory).
    init(_ text: String) throws {
        guard !text.isEmpty, text.utf8.count <= Self.maxBytes else {
            throw Problem(message: "a QR code holds 1 to \(Self.maxBytes) bytes here")
        }
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else {
            throw Problem(message: "libqrencode could not encode the text (errno \(errno))")
        }
        handle = code
        width = Int(code.pointee.width)
    }

    deinit { QRcode_free(handle) }

    /// Whether the module at column `x`, row `y` is dark (bit 0 of libqrencode's byte per module).
    func isDark(x: Int, y: Int) -> Bool {
        precondition((0..<width).contains(x) && (0..<width).contains(y))
        return handle.pointee.data[y * width + x] & 1 == 1
    }

    /// The code as a standalone SVG: one path of unit squares, a 4-module quiet zone (ISO/IEC 18004 §6.3.8),
    /// black on white, scaled by the viewer (`shape-rendering: crispEdges`).
    func svg() -> String {
        let quiet = 4
        let side = width + 2 * quiet
        var path = ""
        for y in 0..<width {
            var x = 0
            while x < width {
                guard isDark(x: x, y: y) else {
                    x += 1
                    continue
                }
                var run = 1
                while x + run < width, isDark(x: x + run, y: y) { run += 1 }
                path += "M\(x + quiet) \(y + quiet)h\(run)v1h-\(run)z"
                x += run
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(side) \(side)" width="\(side * 8)" \
            height="\(side * 8)" shape-rendering="crispEdges"><rect width="\(side)" height="\(side)" fill="#fff"/>\
            <path d="\(path)" fill="#000"/></svg>
            """
    }

    /// Why a QR code could not be made: `responder.qr`.
    struct Problem: HallwatchError {
        var message: String
        var stableCode: String { "responder.qr" }
        var description: String { message }
    }
}
