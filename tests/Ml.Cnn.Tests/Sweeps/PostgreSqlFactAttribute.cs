using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

/// <summary>
/// A test against a real PostgreSQL server: the Npgsql connection string in ML_CNN_POSTGRES (`.ci/run` starts a
/// server with eng/start-postgres.sh and sets it). Without one the test is skipped, unless ML_CNN_REQUIRE_POSTGRES is
/// set (as CI sets it), when a missing server fails it.
/// </summary>
public sealed class PostgreSqlFactAttribute : FactAttribute
{
    public static string? ConnectionString => Environment.GetEnvironmentVariable("ML_CNN_POSTGRES") is { Length: > 0 } s ? s : null;

    public PostgreSqlFactAttribute()
    {
        if (ConnectionString is null && Environment.GetEnvironmentVariable("ML_CNN_REQUIRE_POSTGRES") is null)
            Skip = "No PostgreSQL server: export ML_CNN_POSTGRES=\"$(bash eng/start-postgres.sh)\" to run this test.";
    }

    /// <summary>The server's storage; throws (failing the test) when CI requires a server and none is set.</summary>
    public static Ml.Cnn.Sweeps.StudyStorage Storage() => Ml.Cnn.Sweeps.StudyStorage.PostgreSql(ConnectionString
        ?? throw new InvalidOperationException("ML_CNN_REQUIRE_POSTGRES is set but ML_CNN_POSTGRES names no server."));
}
