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
}
