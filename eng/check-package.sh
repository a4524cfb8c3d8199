#!/usr/bin/env bash
# Packs Ml.Cnn and Ml.Cnn.Sweeps, then builds and runs README's example, and a small sweep, as fresh console apps
# that take the packages from a local feed, as a user's project would. A version unique to this run keeps a cached
# package of the same version out.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version="0.1.0-check.$(date +%s)"
dotnet pack src/Ml.Cnn -c Release -o "$work/feed" -p:Version="$version" --nologo -v quiet
dotnet pack src/Ml.Cnn.Sweeps -c Release -o "$work/feed" -p:Version="$version" --nologo -v quiet
mkdir "$work/app"
cat > "$work/app/app.csproj" <<PROJECT
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <RestoreAdditionalProjectSources>$work/feed</RestoreAdditionalProjectSources>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Ml.Cnn" Version="$version" />
  </ItemGroup>
</Project>
PROJECT
cp samples/ReadmeExample/Program.cs "$work/app/"
dotnet run --project "$work/app" -c Release -- "$PWD/samples/data/fashion-mnist-subset" 1 "$work" | grep -E "accuracy"
test -s "$work/model.zip"
echo "package check: Ml.Cnn $version from a local feed built and ran README's example"

# The sweep package: a 3-trial KNN study by 3-fold cross-validation in a SQLite file, its leaderboard and CSV.
mkdir "$work/sweep"
sed -e 's/Include="Ml.Cnn"/Include="Ml.Cnn.Sweeps"/' "$work/app/app.csproj" > "$work/sweep/sweep.csproj"
cat > "$work/sweep/Program.cs" <<'PROGRAM'
using Microsoft.ML;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Ml.Cnn.Sweeps;

var ml = new MLContext(seed: 1);
var data = ml.Data.TakeRows(ml.Data.LoadFromIdxFiles(Path.Combine(args[0], "train-images-idx3-ubyte.gz"),
    Path.Combine(args[0], "train-labels-idx1-ubyte.gz"), classNames: Idx.FashionMnistClasses), 300);
var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
var space = new SearchSpace
{
    ["K"] = new UniformIntOption(1, 15),
    ["Distance"] = new ChoiceOption(KnnDistance.Euclidean, KnnDistance.Manhattan),
};
var result = ml.Sweep(trial => trial.ML.MulticlassClassification.Trainers.KNearestNeighbors(
        trial.Attach(trial.Parameters.ApplyTo(new KnnOptions()))), keyed,
    new SweepOptions { Storage = StudyStorage.Sqlite(Path.Combine(args[1], "sweeps.db")), SearchSpace = space, Trials = 3, Folds = 3 });
result.WriteLeaderboard();
result.SaveCsv(Path.Combine(args[1], "sweep.csv"));
Console.WriteLine($"best accuracy {result.Best!.Value:F4}");
PROGRAM
dotnet run --project "$work/sweep" -c Release -- "$PWD/samples/data/fashion-mnist-subset" "$work" | grep -E "best accuracy"
test "$(wc -l < "$work/sweep.csv")" = 4
echo "package check: Ml.Cnn.Sweeps $version from a local feed ran a sweep"
