extension BusTopics {
    /// Retained ``EvidenceHold`` that another process (the web, on a door event) asks `hallwatch-pruner` to place
    /// on the recording disks, one topic per hold id; the pruner places it and clears the topic (an empty
    /// retained message). The web never writes a recording disk: its unit keeps them read-only.
    public func holdRequest(_ id: String) -> String { "\(root)/holds/request/\(id)" }
    /// Wildcard for every hold request.
    public var allHoldRequests: String { "\(root)/holds/request/+" }
}
