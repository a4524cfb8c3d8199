using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Ml.Cnn.Sweeps;

/// <summary>
/// Where studies live: a SQLite file beside the user's data (one machine, any number of processes), or a PostgreSQL
/// database that workers on many machines share. Trials are rows leased to a worker until a deadline its heartbeat
/// keeps moving; a trial whose lease ran out goes back to whoever asks next, and only the lease holder's result counts.
/// The same SQL serves both; only the lock that serializes asking differs.
/// </summary>
public sealed class StudyStorage
{
    private readonly string _connectionString;

    /// <summary>True for PostgreSQL, false for SQLite.</summary>
    public bool IsPostgreSql { get; }

    private StudyStorage(string connectionString, bool postgreSql) => (_connectionString, IsPostgreSql) = (connectionString, postgreSql);

    /// <summary>A SQLite file (created if absent).</summary>
    public static StudyStorage Sqlite(string path) => new(new SqliteConnectionStringBuilder
    {
        DataSource = Path.GetFullPath(path), Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 60,
    }.ToString(), postgreSql: false);

    /// <summary>A PostgreSQL database, from an Npgsql connection string (<c>Host=…;Username=…;Password=…;Database=…</c>).</summary>
    public static StudyStorage PostgreSql(string connectionString) => new(connectionString, postgreSql: true);

    /// <summary>
    /// Storage from a command line's <c>--storage</c>: an Npgsql connection string (it has <c>Host=</c> or <c>Server=</c>) is
    /// PostgreSQL, anything else a SQLite file path.
    /// </summary>
    public static StudyStorage Parse(string storage) =>
        new[] { "Host=", "Server=" }.Any(k => storage.Contains(k, StringComparison.OrdinalIgnoreCase)) ? PostgreSql(storage) : Sqlite(storage);

    /// <summary>The storage named for people: the SQLite path, or the PostgreSQL host and database (no password).</summary>
    public override string ToString()
    {
        if (!IsPostgreSql) return new SqliteConnectionStringBuilder(_connectionString).DataSource;
        var b = new NpgsqlConnectionStringBuilder(_connectionString);
        return $"postgresql://{b.Host}:{b.Port}/{b.Database}";
    }

    private DbConnection Open()
    {
        DbConnection connection = IsPostgreSql ? new NpgsqlConnection(_connectionString) : new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    /// <summary>Runs <paramref name="work"/> in a transaction that holds the study's lock: one asker at a time per study.</summary>
    private T Locked<T>(string study, Func<DbConnection, DbTransaction, T> work)
    {
        using var connection = Open();
        // SQLite: BEGIN IMMEDIATE takes the database's write lock up front, so two askers never both read "free".
        using var transaction = connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : connection.BeginTransaction();
        if (IsPostgreSql) Execute(connection, transaction, "SELECT name FROM ml_cnn_studies WHERE name = @study FOR UPDATE", ("study", study));
        var result = work(connection, transaction);
        transaction.Commit();
        return result;
    }

    /// <summary>Creates the tables if they are missing.</summary>
    internal void EnsureSchema()
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        // Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalog; an advisory lock orders them.
        if (IsPostgreSql) Execute(connection, transaction, "SELECT pg_advisory_xact_lock(7461331)");
        else Execute(connection, transaction, "PRAGMA busy_timeout = 60000");
        Execute(connection, transaction, """
            CREATE TABLE IF NOT EXISTS ml_cnn_studies (
                name TEXT PRIMARY KEY, direction TEXT NOT NULL, space TEXT NOT NULL, sampler TEXT NOT NULL,
                pruner TEXT NOT NULL, trials INTEGER NOT NULL, created BIGINT NOT NULL)
            """);
        Execute(connection, transaction, """
            CREATE TABLE IF NOT EXISTS ml_cnn_trials (
                study TEXT NOT NULL, number INTEGER NOT NULL, state TEXT NOT NULL, parameters TEXT NOT NULL,
                value DOUBLE PRECISION, value_std DOUBLE PRECISION, attempts INTEGER NOT NULL, worker TEXT,
                lease_until BIGINT, started BIGINT, seconds DOUBLE PRECISION, message TEXT,
                PRIMARY KEY (study, number))
            """);
        Execute(connection, transaction, """
            CREATE TABLE IF NOT EXISTS ml_cnn_intermediate (
                study TEXT NOT NULL, number INTEGER NOT NULL, step INTEGER NOT NULL, value DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (study, number, step))
            """);
        transaction.Commit();
        if (!IsPostgreSql)
        {
            // Write-ahead logging lets readers (leaderboards, pruners) run beside the one writer.
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode = WAL";
            command.ExecuteNonQuery();
        }
    }

    /// <summary>The stored description of a study, or null if there is none of that name.</summary>
    internal StudyRow? ReadStudy(string study)
    {
        using var connection = Open();
        using var command = Command(connection, null, "SELECT direction, space, sampler, pruner, trials FROM ml_cnn_studies WHERE name = @study",
            ("study", study));
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new StudyRow(study, Enum.Parse<StudyDirection>(reader.GetString(0)), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4))
            : null;
    }

    /// <summary>Creates the study unless it exists; sets its trial budget to the row's when <paramref name="setBudget"/>.</summary>
    internal void CreateStudy(StudyRow row, bool setBudget)
    {
        using var connection = Open();
        Execute(connection, null, """
            INSERT INTO ml_cnn_studies (name, direction, space, sampler, pruner, trials, created)
            VALUES (@name, @direction, @space, @sampler, @pruner, @trials, @created) ON CONFLICT (name) DO NOTHING
            """, ("name", row.Name), ("direction", row.Direction.ToString()), ("space", row.Space), ("sampler", row.Sampler),
            ("pruner", row.Pruner), ("trials", row.Trials), ("created", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        if (setBudget) Execute(connection, null, "UPDATE ml_cnn_studies SET trials = @trials WHERE name = @name", ("trials", row.Trials), ("name", row.Name));
    }

    /// <summary>
    /// Leases the next trial to <paramref name="worker"/>: the lowest-numbered running trial whose lease has run out
    /// (its earlier attempt's intermediate results are discarded), else a new trial from <paramref name="propose"/>
    /// while the budget lasts. Null when there is nothing to take now.
    /// </summary>
    internal (int Number, string Parameters)? Lease(string study, string worker, TimeSpan lease, Func<int, string> propose)
    {
        return Locked(study, (connection, transaction) =>
        {
            var arguments = Clock(("study", study), ("worker", worker), ("lease", (long)lease.TotalMilliseconds));
            using (var command = Command(connection, transaction, $"""
                SELECT number, parameters FROM ml_cnn_trials WHERE study = @study AND state = 'Running' AND lease_until < {NowSql}
                ORDER BY number LIMIT 1
                """, arguments))
            using (var reader = command.ExecuteReader())
            {
                if (reader.Read())
                {
                    var (number, parameters) = (reader.GetInt32(0), reader.GetString(1));
                    reader.Close();
                    // The holder's Finish or Heartbeat does not take the study lock, so the row may have changed since
                    // it was read: it is taken only if it is still running on a lapsed lease.
                    if (Execute(connection, transaction, $"""
                        UPDATE ml_cnn_trials SET worker = @worker, lease_until = {NowSql} + @lease, started = {NowSql}, attempts = attempts + 1
                        WHERE study = @study AND number = @number AND state = 'Running' AND lease_until < {NowSql}
                        """, [.. arguments, ("number", number)]) == 1)
                    {
                        Execute(connection, transaction, "DELETE FROM ml_cnn_intermediate WHERE study = @study AND number = @number",
                            ("study", study), ("number", number));
                        return ((int, string)?)(number, parameters);
                    }
                }
            }
            int budget = Convert.ToInt32(Scalar(connection, transaction, "SELECT trials FROM ml_cnn_studies WHERE name = @study", ("study", study)));
            int count = Convert.ToInt32(Scalar(connection, transaction, "SELECT COUNT(*) FROM ml_cnn_trials WHERE study = @study", ("study", study)));
            if (count >= budget) return null;
            string proposed = propose(count);
            Execute(connection, transaction, $"""
                INSERT INTO ml_cnn_trials (study, number, state, parameters, attempts, worker, lease_until, started)
                VALUES (@study, @number, 'Running', @parameters, 1, @worker, {NowSql} + @lease, {NowSql})
                """, [.. arguments, ("number", count), ("parameters", proposed)]);
            return (count, proposed);
        });
    }

    /// <summary>Moves the lease's deadline on; false if <paramref name="worker"/> no longer holds the trial.</summary>
    internal bool Heartbeat(string study, int number, string worker, TimeSpan lease)
    {
        using var connection = Open();
        return Execute(connection, null, $"""
            UPDATE ml_cnn_trials SET lease_until = {NowSql} + @lease WHERE study = @study AND number = @number AND worker = @worker AND state = 'Running'
            """, Clock(("lease", (long)lease.TotalMilliseconds), ("study", study), ("number", number), ("worker", worker))) == 1;
    }

    /// <summary>
    /// "Now" in milliseconds since 1970: the server's clock on PostgreSQL, which every worker of a study shares whatever
    /// its own machine's clock says; the one machine's clock for SQLite (parameter @now, from <see cref="Clock"/>).
    /// </summary>
    private string NowSql => IsPostgreSql ? "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)" : "@now";

    /// <summary>The arguments, with @now for SQLite.</summary>
    private (string, object?)[] Clock(params (string, object?)[] arguments) =>
        IsPostgreSql ? arguments : [.. arguments, ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())];

    /// <summary>Records an intermediate value; false if <paramref name="worker"/> no longer holds the trial.</summary>
    internal bool Report(string study, int number, string worker, int step, double value)
    {
        return Locked(study, (connection, transaction) =>
        {
            if (Scalar(connection, transaction, "SELECT worker FROM ml_cnn_trials WHERE study = @study AND number = @number AND state = 'Running'",
                    ("study", study), ("number", number)) as string != worker) return false;
            Execute(connection, transaction, """
                INSERT INTO ml_cnn_intermediate (study, number, step, value) VALUES (@study, @number, @step, @value)
                ON CONFLICT (study, number, step) DO UPDATE SET value = excluded.value
                """, ("study", study), ("number", number), ("step", step), ("value", value));
            return true;
        });
    }

    /// <summary>Ends the trial; false (and nothing written) if <paramref name="worker"/> no longer holds it.</summary>
    internal bool Finish(string study, int number, string worker, TrialState state, double? value, double? std, double seconds, string? message)
    {
        using var connection = Open();
        return Execute(connection, null, """
            UPDATE ml_cnn_trials SET state = @state, value = @value, value_std = @std, seconds = @seconds, message = @message,
                lease_until = NULL WHERE study = @study AND number = @number AND worker = @worker AND state = 'Running'
            """, ("state", state.ToString()), ("value", value), ("std", std), ("seconds", seconds), ("message", message),
            ("study", study), ("number", number), ("worker", worker)) == 1;
    }

    /// <summary>Every trial of the study with its intermediate values, in number order.</summary>
    internal IReadOnlyList<TrialRecord> Trials(string study, SearchSpace space)
    {
        using var connection = Open();
        var steps = new Dictionary<int, List<(int, double)>>();
        using (var command = Command(connection, null, "SELECT number, step, value FROM ml_cnn_intermediate WHERE study = @study ORDER BY number, step",
            ("study", study)))
        using (var reader = command.ExecuteReader())
            while (reader.Read())
            {
                int number = reader.GetInt32(0);
                if (!steps.TryGetValue(number, out var list)) steps[number] = list = [];
                list.Add((reader.GetInt32(1), reader.GetDouble(2)));
            }
        var trials = new List<TrialRecord>();
        using (var command = Command(connection, null, """
            SELECT number, state, parameters, value, value_std, attempts, seconds, message, worker FROM ml_cnn_trials
            WHERE study = @study ORDER BY number
            """, ("study", study)))
        using (var reader = command.ExecuteReader())
            while (reader.Read())
            {
                int number = reader.GetInt32(0);
                double? Nullable(int i) => reader.IsDBNull(i) ? null : reader.GetDouble(i);
                trials.Add(new TrialRecord(number, Enum.Parse<TrialState>(reader.GetString(1)), space.ReadJson(reader.GetString(2)),
                    Nullable(3), Nullable(4), steps.TryGetValue(number, out var s) ? s : [], reader.GetInt32(5), Nullable(6) ?? 0,
                    reader.IsDBNull(7) ? null : reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8)));
            }
        return trials;
    }

    /// <summary>Removes a study and its trials (tests and users starting over).</summary>
    public void DeleteStudy(string study)
    {
        EnsureSchema();
        using var connection = Open();
        foreach (var table in new[] { "ml_cnn_intermediate", "ml_cnn_trials" })
            Execute(connection, null, $"DELETE FROM {table} WHERE study = @study", ("study", study));
        Execute(connection, null, "DELETE FROM ml_cnn_studies WHERE name = @study", ("study", study));
    }

    private static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            // A null's type cannot be inferred; PostgreSQL wants one for every parameter.
            if (value is null && parameter is NpgsqlParameter p) p.NpgsqlDbType = name == "message" ? NpgsqlTypes.NpgsqlDbType.Text : NpgsqlTypes.NpgsqlDbType.Double;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    private static int Execute(DbConnection connection, DbTransaction? transaction, string sql, params (string, object?)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteNonQuery();
    }

    private static object? Scalar(DbConnection connection, DbTransaction? transaction, string sql, params (string, object?)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteScalar();
    }
}

/// <summary>A study's stored description.</summary>
internal sealed record StudyRow(string Name, StudyDirection Direction, string Space, string Sampler, string Pruner, int Trials);
