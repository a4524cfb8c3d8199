using Xunit;

namespace Ml.Cnn.Samples.Tests;

/// <summary>README.md's ML.NET example is samples/ReadmeExample/Program.cs, word for word, and it runs.</summary>
public sealed class ReadmeExampleTests
{
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ml.Cnn.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No Ml.Cnn.sln above {AppContext.BaseDirectory}.");
    }

    [Fact]
    public void TheReadmeShowsTheProgramVerbatim()
    {
        string root = RepositoryRoot();
        string program = File.ReadAllText(Path.Combine(root, "samples", "ReadmeExample", "Program.cs")).ReplaceLineEndings("\n").Trim();
        string readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        Assert.Contains("```csharp\n" + program + "\n```", readme);
    }

    [Fact]
    public void TheProgramRunsOnTheEmbeddedData()
    {
        string root = RepositoryRoot(), output = Path.Combine(Path.GetTempPath(), "mlcnn-readme-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(output);
        try
        {
            var entry = typeof(Row).Assembly.EntryPoint!;
            entry.Invoke(null, [new[] { Path.Combine(root, "samples", "data", "fashion-mnist-subset"), "1", output }]);
            Assert.True(new FileInfo(Path.Combine(output, "model.zip")).Length > 10_000);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void TheCustomNetworkBlockIsTheSampleAndRuns()
    {
        string root = RepositoryRoot();
        var source = File.ReadAllLines(Path.Combine(root, "samples", "ReadmeExample", "CustomNetwork.cs"));
        var usings = source.Where(l => l.StartsWith("using ")).ToList();
        int begin = Array.IndexOf(source, "        // README begin"), end = Array.IndexOf(source, "        // README end");
        var region = source[(begin + 1)..end].Select(l => l[8..]
            .Replace("dataFolder", "\"samples/data/fashion-mnist-subset\"").Replace("Epochs = epochs", "Epochs = 5"));
        string block = "```csharp\n" + string.Join("\n", usings) + "\n\n" + string.Join("\n", region) + "\n```";
        Assert.Contains(block, File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n"));

        var result = CustomNetwork.Train(Path.Combine(root, "samples", "data", "fashion-mnist-subset"), epochs: 1);
        Assert.Single(result.History);
        Assert.True(result.History[0].ValidationAccuracy > 0.3, $"validation accuracy {result.History[0].ValidationAccuracy}");
    }
}
