import HallwatchCore
import HallwatchStatus
import Prometheus

/// `/metrics` in Prometheus's text format (swift-prometheus), drawn from the same bus snapshot as the page.
/// A fresh registry per scrape: a camera or disk that left the configuration leaves no stale series.
/// Units are in the names (Prometheus conventions: seconds, bytes, bits per second).
public enum WebMetrics {
    /// The exposition of `snapshot`.
    public static func scrape(_ snapshot: StatusCollector.Snapshot) -> [UInt8] {
        let r = PrometheusCollectorRegistry()
        let view = StatusView(snapshot: snapshot, alarms: [], visible: nil)
        for c in view.cameras {
            let l = [("camera", c.id)]
            r.makeGauge(name: "hallwatch_camera_online", labels: l, help: "1 when the camera is online and recorded")
                .set(Int64(c.state == "online" ? 1 : 0))
            if let b = c.bitrateBps {
                r.makeGauge(
                    name: "hallwatch_camera_bitrate_bits_per_second", labels: l, help: "Measured video bit rate"
                )
                .set(Double(b))
            }
            if let f = c.fps {
                r.makeGauge(name: "hallwatch_camera_frames_per_second", labels: l, help: "Measured frame rate").set(f)
            }
            if let a = c.lastFragmentAgeSeconds {
                r.makeGauge(
                    name: "hallwatch_camera_last_fragment_age_seconds", labels: l,
                    help: "Age of the start of the newest durable fragment"
                ).set(a)
            }
        }
        for row in snapshot.cameras {
            if let rec = row.recording {
                r.makeGauge(
                    name: "hallwatch_camera_recorded_bytes", labels: [("camera", row.camera.rawValue)],
                    help: "Payload bytes durably recorded and indexed"
                ).set(rec.recordedBytes)
            }
        }
        for d in view.disks {
            let l = [("disk", d.name)]
            r.makeGauge(name: "hallwatch_disk_healthy", labels: l, help: "1 when the disk is healthy").set(
                Int64(d.health == "healthy" ? 1 : 0))
            r.makeGauge(name: "hallwatch_disk_free_slots", labels: l, help: "Free slots").set(Int64(d.freeSlots))
            r.makeGauge(name: "hallwatch_disk_slots", labels: l, help: "Slots on the disk").set(Int64(d.slotCount))
        }
        for p in view.processes {
            r.makeGauge(name: "hallwatch_process_up", labels: [("process", p.name)], help: "1 when the process is up")
                .set(Int64(p.state == "up" ? 1 : 0))
        }
        return r.emitToBuffer()
    }
}
