import Testing

@testable import Projections

/// The plan `clickd migrate` and `clickd rebuild` carry out on a Citus coordinator
/// (docs/design/citus.md). Pure: the cluster itself is tested by CitusTests (make test-citus).
@Suite struct CitusLayoutTests {
    typealias T = CitusLayout.Table

    static let fresh: [T] = [
        T(name: "activity", hasShard: true, placement: .local),
        T(name: "checkpoints", hasShard: true, placement: .local),
        T(name: "schema_migrations", hasShard: false, placement: .local),
        T(name: "sharding", hasShard: false, placement: .local),
    ]

    /// A new database: the checkpoints start the co-location group, every other sharded
    /// table joins it, the rest become reference tables.
    @Test func aFreshSchemaIsDistributedCheckpointsFirst() throws {
        let layout = try CitusLayout.plan(schema: "clickd_internal", tables: Self.fresh, shardCount: 16)
        #expect(
            layout.steps == [
                .distributeFirst(table: "clickd_internal.checkpoints", shardCount: 16),
                .distribute(table: "clickd_internal.activity", colocateWith: "clickd_internal.checkpoints"),
                .reference(table: "clickd_internal.schema_migrations"),
                .reference(table: "clickd_internal.sharding"),
            ])
    }

    /// Running it again changes nothing; a table a later migration added is placed alone.
    @Test func aLaidOutSchemaIsLeftAloneAndANewTableJoins() throws {
        var tables = [
            T(name: "activity", hasShard: true, placement: .distributed(column: "shard", colocation: 3)),
            T(name: "checkpoints", hasShard: true, placement: .distributed(column: "shard", colocation: 3)),
            T(name: "sharding", hasShard: false, placement: .reference),
        ]
        #expect(try CitusLayout.plan(schema: "clickd_internal", tables: tables, shardCount: 32).steps == [])
        tables.append(T(name: "opens", hasShard: true, placement: .local))
        tables.append(T(name: "settings", hasShard: false, placement: .local))
        #expect(
            try CitusLayout.plan(schema: "clickd_internal", tables: tables, shardCount: 32).steps == [
                .distribute(table: "clickd_internal.opens", colocateWith: "clickd_internal.checkpoints"),
                .reference(table: "clickd_internal.settings"),
            ])
    }

    /// The ingest function is delegated by its shard argument in the checkpoints' group,
    /// after the tables; once it is, and when it already was, nothing is done; one
    /// distributed otherwise (another argument, another group) is placed again.
    @Test func theIngestFunctionIsDelegatedByShard() throws {
        typealias F = CitusLayout.Function
        let signature = "clickd_ingest.apply_batch(integer,text)"
        let fresh = try CitusLayout.plan(schema: "clickd_internal", tables: Self.fresh, functions: [F(signature: signature)], shardCount: 16)
        #expect(fresh.steps.first == .distributeFirst(table: "clickd_internal.checkpoints", shardCount: 16))
        #expect(fresh.steps.last == .delegate(function: signature, colocateWith: "clickd_internal.checkpoints"))
        let placed = [
            T(name: "activity", hasShard: true, placement: .distributed(column: "shard", colocation: 3)),
            T(name: "checkpoints", hasShard: true, placement: .distributed(column: "shard", colocation: 3)),
        ]
        #expect(
            try CitusLayout.plan(
                schema: "clickd_internal", tables: placed, functions: [F(signature: signature, argument: 0, colocation: 3)], shardCount: 32
            ).steps == [])
        for misplaced in [F(signature: signature, argument: 1, colocation: 3), F(signature: signature, argument: 0, colocation: 7)] {
            #expect(
                try CitusLayout.plan(schema: "clickd_internal", tables: placed, functions: [misplaced], shardCount: 32).steps == [
                    .delegate(function: signature, colocateWith: "clickd_internal.checkpoints")
                ])
        }
        #expect(throws: CitusLayoutError.self) {
            try CitusLayout.plan(schema: "clickd_internal", tables: [], functions: [F(signature: signature)], shardCount: 32)
        }
    }

    /// A rebuild's shadow tables join the live checkpoints' group, their own checkpoints too.
    @Test func shadowTablesJoinTheLiveGroup() throws {
        let layout = try CitusLayout.plan(
            schema: "clickd_rebuild", tables: Self.fresh, anchor: ("clickd_internal.checkpoints", 3), shardCount: 16)
        #expect(
            layout.steps == [
                .distribute(table: "clickd_rebuild.checkpoints", colocateWith: "clickd_internal.checkpoints"),
                .distribute(table: "clickd_rebuild.activity", colocateWith: "clickd_internal.checkpoints"),
                .reference(table: "clickd_rebuild.schema_migrations"),
                .reference(table: "clickd_rebuild.sharding"),
            ])
    }

    /// A layout an operator made otherwise is refused with the call that undoes it: an
    /// ingest transaction must stay on one worker.
    @Test func aForeignLayoutIsRefusedWithWhatToDo() throws {
        let cases: [(T, String)] = [
            (T(name: "activity", hasShard: true, placement: .distributed(column: "customer_id", colocation: 3)), "distributed by customer_id"),
            (T(name: "activity", hasShard: true, placement: .distributed(column: "shard", colocation: 9)), "not co-located"),
            (T(name: "activity", hasShard: true, placement: .reference), "is a reference table"),
            (T(name: "sharding", hasShard: false, placement: .distributed(column: "shards", colocation: 3)), "as a reference table"),
        ]
        for (table, message) in cases {
            let tables = [T(name: "checkpoints", hasShard: true, placement: .distributed(column: "shard", colocation: 3)), table]
            #expect {
                try CitusLayout.plan(schema: "clickd_internal", tables: tables, shardCount: 32)
            } throws: { error in
                let text = "\(error)"
                return text.contains(message) && text.contains("undistribute_table('clickd_internal.\(table.name)')")
            }
        }
        // Without checkpoints there is no group to join.
        #expect(throws: CitusLayoutError.self) {
            try CitusLayout.plan(schema: "clickd_internal", tables: [T(name: "activity", hasShard: true, placement: .local)], shardCount: 32)
        }
    }
}
