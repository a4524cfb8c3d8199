#!/usr/bin/env bash
# Packs Ml.Cnn, then builds and runs README's example as a fresh console app that takes the package from a local
# feed, as a user's project would. A version unique to this run keeps a cached package of the same version out.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version="0.1.0-check.$(date +%s)"
dotnet pack src/Ml.Cnn -c Release -o "$work/feed" -p:Version="$version" --nologo -v quiet
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
