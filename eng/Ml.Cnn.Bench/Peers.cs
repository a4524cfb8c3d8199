using System.Diagnostics;

namespace Ml.Cnn.Bench;

/// <summary>
/// Starts a PyTorch peer (eng/peers/*.py) with Debian's python3 and every thread pool it may use — OpenMP and the
/// system BLAS that its dense layers call — held to the benchmark's thread count, so both sides get the same cores.
/// The interpreter is Debian's python3, or the one ML_CNN_PYTHON names (a GPU machine's own PyTorch).
/// </summary>
internal static class Peers
{
    public static Process Start(string script, int threads, params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("ML_CNN_PYTHON") ?? "/usr/bin/python3", [Path.Combine(AppContext.BaseDirectory, "peers", script), .. args])
        {
            RedirectStandardOutput = true,
        };
        foreach (var pool in new[] { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS" })
            psi.Environment[pool] = threads.ToString();
        return Process.Start(psi)!;
    }
}
