/// Reading the catalog for `CitusLayout.plan` and carrying its steps out.
extension CitusLayout {
    /// Whether `db` is a Citus coordinator (the extension is in the database). A Citus
    /// worker is refused: clickd's tables are made and read through the coordinator.
    public static func isCoordinator(_ db: PostgresConnection) throws -> Bool {
        guard try db.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'").count == 1 else { return false }
        guard try db.query("SELECT citus_is_coordinator()") == [["t"]] else {
            throw CitusLayoutError(
                "this database is a Citus worker node: run clickd against the coordinator (docs/scale-out.md)")
        }
        return true
    }

    /// The tables of `schema` and where they are now.
    static func tables(_ db: PostgresConnection, schema: String) throws -> [Table] {
        try db.query(
            """
            SELECT c.relname,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'shard' AND NOT a.attisdropped),
                   p.partmethod, p.repmodel, p.colocationid,
                   CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY 1
            """, [schema]
        ).map { row in
            let placement: Placement
            switch (row[2], row[3]) {
            case ("h", _): placement = .distributed(column: row[5] ?? "", colocation: Int(row[4] ?? "") ?? 0)
            case ("n", "t"): placement = .reference
            default: placement = .local  // not in Citus's metadata (or a Citus-managed local table)
            }
            return Table(name: row[0] ?? "", hasShard: row[1] == "t", placement: placement)
        }
    }

    /// clickd's functions of one shard (schema `clickd_ingest`, first argument `p_shard`) and
    /// how Citus distributes them now. The others (activity's months, made and dropped on
    /// the coordinator, which sends the DDL to every node) are not delegated.
    static func functions(_ db: PostgresConnection) throws -> [Function] {
        try db.query(
            """
            SELECT p.oid::regprocedure::text, o.distribution_argument_index, o.colocationid
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            LEFT JOIN pg_dist_object o ON o.classid = 'pg_proc'::regclass AND o.objid = p.oid
            WHERE n.nspname = 'clickd_ingest' AND p.proargnames[1] = 'p_shard' ORDER BY 1
            """
        ).map { Function(signature: $0[0] ?? "", argument: $0[1].flatMap { Int($0) }, colocation: $0[2].flatMap { Int($0) }) }
    }

    /// The co-location group of `schema`'s checkpoints, when they are distributed.
    static func anchor(_ db: PostgresConnection, schema: String) throws -> (table: String, colocation: Int)? {
        let table = "\(schema).\(anchorTable)"
        let rows = try db.query(
            "SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = to_regclass($1) AND partmethod = 'h'", [table])
        return rows.first?[0].flatMap { Int($0) }.map { (table, $0) }
    }

    /// Lays `schema` out on the cluster: plans from the catalog, carries the steps out (a
    /// table that had rows keeps them: Citus copies them into its shards, and the local
    /// copy is truncated), and lets `clickd_analyst` read the tables — Citus checks the
    /// querying role's own rights on the shards behind a view, unlike PostgreSQL
    /// (citusdata/citus#1683, #6161; docs/design/citus.md). `colocateWith`: the live
    /// schema, for a rebuild's shadow tables. Returns the steps taken.
    @discardableResult
    public static func apply(
        _ db: PostgresConnection, schema: String, colocateWith: String? = nil, report: (String) -> Void = { _ in }
    ) throws -> [Step] {
        var anchorGroup: (table: String, colocation: Int)?
        if let colocateWith {
            guard let live = try anchor(db, schema: colocateWith) else {
                throw CitusLayoutError("\(colocateWith).\(anchorTable) is not distributed: run clickd migrate on the coordinator first")
            }
            anchorGroup = live
        }
        let shardCount = Int(try db.query("SELECT current_setting('citus.shard_count')").first?[0] ?? "") ?? 32
        // The ingest function is placed with the live tables (a rebuild's shadow tables join
        // the live group, so it serves them too).
        let layout = try plan(
            schema: schema, tables: try tables(db, schema: schema), functions: colocateWith == nil ? try functions(db) : [],
            anchor: anchorGroup, shardCount: shardCount)
        for step in layout.steps {
            switch step {
            case .reference(let table):
                try db.query("SELECT create_reference_table($1::regclass)", [table])
            case .distributeFirst(let table, let count):
                try db.query("SELECT create_distributed_table($1::regclass, 'shard', shard_count => $2::int)", [table, count])
            case .distribute(let table, let anchor):
                try db.query("SELECT create_distributed_table($1::regclass, 'shard', colocate_with => $2::text)", [table, anchor])
            case .delegate(let function, let anchor):
                try db.query("SELECT create_distributed_function($1::regprocedure, '$1', colocate_with => $2::text)", [function, anchor])
                continue
            }
            try db.query("SELECT truncate_local_data_after_distributing_table($1::regclass)", [step.object])
        }
        if !layout.steps.isEmpty { report(layout.summary(schema: schema)) }
        // Schema and table names are ours (constants of clickd); no value is interpolated.
        try db.execute(
            "GRANT USAGE ON SCHEMA \(schema) TO clickd_analyst; GRANT SELECT ON ALL TABLES IN SCHEMA \(schema) TO clickd_analyst")
        return layout.steps
    }

    /// Per node, how many of clickd's `shards` shards its Citus shards hold (the ingest
    /// work each node gets): "host:port=n" in node order.
    public static func shardsPerNode(_ db: PostgresConnection, schema: String, shards: Int) throws -> [(node: String, shards: Int)] {
        try db.query(
            """
            SELECT n.nodename || ':' || n.nodeport, count(*)
            FROM generate_series(0, $2::int - 1) s
            JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column($1::regclass, s)
            JOIN pg_dist_node n ON n.groupid = p.groupid
            GROUP BY 1 ORDER BY 1
            """, ["\(schema).\(anchorTable)", shards]
        ).map { ($0[0] ?? "", Int($0[1] ?? "") ?? 0) }
    }
}

/// What one node of the cluster holds and has done, for `clickd status`.
public struct CitusNodeLoad: Equatable, Sendable {
    public var node: String
    /// clickd shards whose rows the node's Citus shards hold.
    public var clickdShards: Int
    /// Bytes of the clickd tables' Citus shards on the node.
    public var bytes: Int64
    /// Transactions committed in this database on the node since its statistics were reset
    /// (pg_stat_database.xact_commit): compared before and after an ingest, the work it got.
    public var transactions: Int64
}

extension CitusLayout {
    /// Per node — worker or coordinator — that holds a clickd shard: its share of the shards,
    /// the bytes, and the transactions it has committed.
    public static func nodeLoad(_ db: PostgresConnection, shards: Int) throws -> [CitusNodeLoad] {
        let perNode = try shardsPerNode(db, schema: "clickd_internal", shards: shards)
        let bytes = Dictionary(
            try db.query(
                """
                SELECT nodename || ':' || nodeport, sum(shard_size)::bigint FROM citus_shards
                WHERE table_name::text LIKE 'clickd\\_internal.%' GROUP BY 1
                """
            ).map { ($0[0] ?? "", Int64($0[1] ?? "") ?? 0) }, uniquingKeysWith: +)
        let probe = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        var transactions: [String: Int64] = [:]
        for row in try db.query("SELECT nodename || ':' || nodeport, success, result FROM run_command_on_workers($1)", [probe]) where row[1] == "t" {
            transactions[row[0] ?? ""] = Int64(row[2] ?? "") ?? 0
        }
        let here = try db.query(
            "SELECT nodename || ':' || nodeport, (\(probe)) FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary'")
        for row in here { transactions[row[0] ?? ""] = Int64(row[1] ?? "") ?? 0 }
        return perNode.map {
            CitusNodeLoad(node: $0.node, clickdShards: $0.shards, bytes: bytes[$0.node] ?? 0, transactions: transactions[$0.node] ?? 0)
        }
    }
}

extension CitusLayout.Step {
    /// The table or function the step places.
    public var object: String {
        switch self {
        case .reference(let table), .distributeFirst(let table, _), .distribute(let table, _): table
        case .delegate(let function, _): function
        }
    }
}

extension CitusLayout {
    /// One line for `clickd migrate`: what was placed where.
    func summary(schema: String) -> String {
        var distributed: [String] = []
        var reference: [String] = []
        var delegated: [String] = []
        var count: Int?
        for step in steps {
            let name = String(step.object.dropFirst(schema.count + 1))
            switch step {
            case .delegate(let function, _): delegated.append(String(function.prefix { $0 != "(" }))
            case .reference: reference.append(name)
            case .distributeFirst(_, let shards):
                distributed.append(name)
                count = shards
            case .distribute: distributed.append(name)
            }
        }
        var parts: [String] = []
        if !distributed.isEmpty {
            parts.append(
                distributed.joined(separator: " ") + " distributed by shard, co-located"
                    + (count.map { " (\($0) Citus shards)" } ?? ""))
        }
        if !reference.isEmpty { parts.append(reference.joined(separator: " ") + " reference tables") }
        if !delegated.isEmpty { parts.append(delegated.joined(separator: " ") + " delegated by shard") }
        return "citus: \(schema): " + parts.joined(separator: "; ")
    }
}
