using System.Diagnostics;
using Xunit;

namespace Ml.Cnn.Tests.Support;

/// <summary>Runs a sample program as users do (<c>dotnet exec</c> on its build output) and returns what it printed.</summary>
public static class SampleProcess
{
    public static async Task<string> Run(string assembly, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["exec", Path.Combine(AppContext.BaseDirectory, assembly), .. args]) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{assembly} exited with {process.ExitCode}: {await error}\n{output}");
        return output;
    }
}
