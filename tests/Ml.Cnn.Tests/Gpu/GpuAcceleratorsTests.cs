using ILGPU;
using ILGPU.Runtime;
using Ml.Cnn.Gpu;
using Xunit;

namespace Ml.Cnn.Tests.Gpu;

public sealed class GpuAcceleratorsTests
{
    [Fact]
    public void ListsAtLeastIlgpusCpuAccelerator()
    {
        // Machines without a GPU still have ILGPU's CPU accelerator, which is where GPU kernels get tested.
        var devices = GpuAccelerators.Describe();
        Assert.Contains(devices, d => d.StartsWith("CPU:", StringComparison.Ordinal));
    }

    [Fact]
    public void CuBlasIsLookedForNewestFirstThenInTheToolkitAndWheelFolders()
    {
        var candidates = CuBlas.Candidates(chosen: null).ToList();
        Assert.Equal(["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"], candidates.Take(3).Select(c => c.Path));
        // Files found in folders are named by full path, each with its libcublasLt beside it.
        Assert.All(candidates.Skip(3), c => Assert.Equal(Path.GetDirectoryName(c.Path), Path.GetDirectoryName(c.Helper)));
        Assert.Equal([("/opt/cublas/libcublas.so.13", (string?)null)], CuBlas.Candidates("/opt/cublas/libcublas.so.13"));
    }

    [Fact]
    public void AViewsAddressIsItsBuffersPlusItsOffset()
    {
        using var gpu = GpuBackend.CpuAccelerator();
        using var buffer = gpu.Accelerator.Allocate1D<float>(64);
        Assert.Equal(buffer.NativePtr, CuBlas.Address(buffer.View));
        Assert.Equal(buffer.NativePtr + 40 * sizeof(float), CuBlas.Address(buffer.View.SubView(8, 50).SubView(32, 4)));
    }

    [Fact]
    public void TheCpuAcceleratorComputesProductsWithItsOwnKernels()
    {
        using var gpu = GpuBackend.CpuAccelerator();
        Assert.Contains("ILGPU SGEMM kernels", gpu.GemmLibrary);
    }
}
