/// Where clickd's tables live on a Citus cluster (docs/design/citus.md), as a plan: which
/// tables become reference tables (a copy on every node) and which are distributed by
/// `shard`, co-located with the live checkpoints, so that one ingest transaction — one
/// (log, shard) — is on one worker. Pure: the catalog is read and the plan carried out by
/// `CitusLayout+Database.swift`.
public struct CitusLayout: Equatable, Sendable {
    /// A table of the schema being laid out, as the catalog describes it now.
    public struct Table: Equatable, Sendable {
        public var name: String
        /// It has a `shard` column (every projection table has it first in its key).
        public var hasShard: Bool
        public var placement: Placement

        public init(name: String, hasShard: Bool, placement: Placement) {
            self.name = name
            self.hasShard = hasShard
            self.placement = placement
        }
    }

    /// A function of clickd's (schema `clickd_ingest`) and whether Citus delegates it now.
    public struct Function: Equatable, Sendable {
        /// Its signature (`regprocedure` text), e.g. `clickd_ingest.apply_batch(integer, …)`.
        public var signature: String
        /// The argument (0-based) Citus distributes it by, when it does.
        public var argument: Int?
        /// The co-location group of that distribution.
        public var colocation: Int?

        public init(signature: String, argument: Int? = nil, colocation: Int? = nil) {
            self.signature = signature
            self.argument = argument
            self.colocation = colocation
        }
    }

    public enum Placement: Equatable, Sendable {
        /// A plain table on the coordinator.
        case local
        case reference
        /// Distributed by `column`, in co-location group `colocation`.
        case distributed(column: String, colocation: Int)
    }

    /// One call a migration or a rebuild makes, in order.
    public enum Step: Equatable, Sendable {
        /// `create_reference_table(table)`.
        case reference(table: String)
        /// `create_distributed_table(table, 'shard', shard_count => n)`: the first table of a
        /// new co-location group (the live checkpoints of a database distributed now).
        case distributeFirst(table: String, shardCount: Int)
        /// `create_distributed_table(table, 'shard', colocate_with => anchor)`.
        case distribute(table: String, colocateWith: String)
        /// `create_distributed_function(function, '$1', colocate_with => anchor)`: Citus sends
        /// a call to the worker that holds the shard its first argument names.
        case delegate(function: String, colocateWith: String)
    }

    /// The table every other one is co-located with.
    public static let anchorTable = "checkpoints"

    public let steps: [Step]

    /// Plans the tables of `schema` (names unqualified). `anchor` is the co-location group
    /// to join: nil for the live schema, whose checkpoints start a group of `shardCount`
    /// Citus shards when they are not distributed yet; for a rebuild's shadow schema, the
    /// live checkpoints' qualified name and group. Tables already placed as the plan would
    /// place them are left alone; a table placed otherwise (distributed by another column,
    /// or in another group, or a projection table made a reference table) is refused with
    /// what to do, since ingest transactions would then span workers. `functions` (clickd's
    /// functions whose first argument is a shard) are delegated by that argument in the
    /// checkpoints' group, after the tables.
    public static func plan(
        schema: String, tables: [Table], functions: [Function] = [], anchor: (table: String, colocation: Int)? = nil, shardCount: Int
    ) throws -> CitusLayout {
        let own = "\(schema).\(anchorTable)"
        var group = anchor?.colocation
        if anchor == nil, let checkpoints = tables.first(where: { $0.name == anchorTable }),
            case .distributed(column: "shard", let colocation) = checkpoints.placement
        {
            group = colocation
        }
        let anchorName = anchor?.table ?? own
        var steps: [Step] = []
        let ordered = tables.filter { $0.name == anchorTable } + tables.filter { $0.name != anchorTable }.sorted { $0.name < $1.name }
        for table in ordered {
            let name = "\(schema).\(table.name)"
            switch (table.hasShard, table.placement) {
            case (false, .reference):
                continue
            case (true, .distributed(column: "shard", let colocation)) where colocation == group:
                continue
            case (false, .local):
                steps.append(.reference(table: name))
            case (true, .local):
                if group == nil, table.name == anchorTable {
                    steps.append(.distributeFirst(table: name, shardCount: shardCount))
                    group = -1  // the group the calls above make; its number is Citus's
                } else {
                    guard group != nil else {
                        throw CitusLayoutError(
                            "\(name) cannot be distributed before \(own): the database has no \(anchorTable) table; run clickd migrate")
                    }
                    steps.append(.distribute(table: name, colocateWith: anchorName))
                }
            case (false, .distributed):
                throw CitusLayoutError(
                    "\(name) is distributed, but clickd reads it on every node as a reference table: SELECT undistribute_table('\(name)'), then run clickd migrate again"
                )
            case (true, .reference):
                throw CitusLayoutError(
                    "\(name) is a reference table, but its rows belong to shards: SELECT undistribute_table('\(name)'), then run clickd migrate again"
                )
            case (true, .distributed(let column, _)):
                throw CitusLayoutError(
                    column == "shard"
                        ? "\(name) is distributed by shard but not co-located with \(anchorName), so an ingest transaction would span workers: SELECT undistribute_table('\(name)'), then run clickd migrate again"
                        : "\(name) is distributed by \(column), not by shard: SELECT undistribute_table('\(name)'), then run clickd migrate again")
            }
        }
        for function in functions where function.argument != 0 || function.colocation == nil || function.colocation != group {
            guard group != nil else {
                throw CitusLayoutError("\(function.signature) cannot be delegated before \(own) is distributed; run clickd migrate")
            }
            steps.append(.delegate(function: function.signature, colocateWith: anchorName))
        }
        return CitusLayout(steps: steps)
    }
}

public struct CitusLayoutError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
