/// TrackerEdge: the HTTP edge that verifies link tokens, appends clicks to the event log
/// and answers 302 (issue 4). Nothing is implemented here yet; the module exists so that
/// the layout of ../shared/DESIGN.md is fixed from the start.
public enum TrackerEdge {}
