import Testing

@testable import HallwatchMedia

@Suite("Parameter sets")
struct ParameterSetsTests {
    let sps: [UInt8] = [0x67, 0x64, 0x00, 0x15, 0xAC, 0xD9, 0x40, 0xA0]
    let pps: [UInt8] = [0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0]

    @Test func splitsAtThreeAndFourByteStartCodesAndDropsTrailingZeros() {
        let stream: [UInt8] = [0, 0, 0, 1] + sps + [0, 0, 1] + pps + [0, 0]
        #expect(ParameterSets.nalUnits(stream) == [sps, pps])
        #expect(ParameterSets.nalUnits([]) == [])
        #expect(ParameterSets.nalUnits([0, 0, 0, 0]) == [])
    }

    @Test func repeatsOrderAndTrailingZerosAreNotAChange() {
        // Seen from GStreamer: the SDP's PPS carried a trailing zero, the in-band one not, and the IDR repeated both.
        let sdp: [UInt8] = [0, 0, 0, 1] + sps + [0, 0, 0, 1] + pps + [0]
        let inBand: [UInt8] = [0, 0, 0, 1] + sps + [0, 0, 0, 1] + pps + [0, 0, 0, 1] + sps + [0, 0, 0, 1] + pps
        #expect(ParameterSets.sameSets(sdp, inBand))
        #expect(ParameterSets.sameSets([0, 0, 1] + pps + [0, 0, 1] + sps, sdp))
    }

    @Test func aDifferentSPSIsAChange() {
        var otherSPS = sps
        otherSPS[3] = 0x1F  // another level: e.g. the camera switched to a larger resolution
        #expect(
            !ParameterSets.sameSets(
                [0, 0, 0, 1] + sps + [0, 0, 0, 1] + pps, [0, 0, 0, 1] + otherSPS + [0, 0, 0, 1] + pps))
        #expect(!ParameterSets.sameSets([], [0, 0, 0, 1] + sps))
    }
}
