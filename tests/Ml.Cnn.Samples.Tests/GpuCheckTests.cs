using System.Diagnostics;
using Xunit;

namespace Ml.Cnn.Samples.Tests;

/// <summary>
/// eng/gpu/GpuCheck, the runner that takes the GPU suite to a CUDA machine without an SDK, still finds and runs it:
/// here on ILGPU's CPU accelerator, on the GPU SGEMM's tests.
/// </summary>
public sealed class GpuCheckTests
{
    [Fact]
    public void TheRunnerFindsAndPassesTheGpuTests()
    {
        string folder = AppContext.BaseDirectory.Replace(Path.Combine("tests", "Ml.Cnn.Samples.Tests"), Path.Combine("eng", "gpu", "GpuCheck"));
        var start = new ProcessStartInfo("dotnet", [Path.Combine(folder, "GpuCheck.dll"), "tests", "cpu", "GpuGemmTests"])
        {
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, output);
        Assert.Contains("PASS GpuGemmTests.TiledKernelGivesThePerElementKernelsBits(17, 6, 33, True, False)", output);
        Assert.Contains(" passed, 0 failed, 0 skipped", output);
    }
}
