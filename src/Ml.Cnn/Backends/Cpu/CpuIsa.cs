using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// What the JIT reports of this processor's vector units, and which kernel family that selects, so benchmarks and
/// test failures can say which path ran. Switching wider units off (<c>DOTNET_EnableAVX512=0</c>,
/// <c>DOTNET_EnableAVX2=0</c>) changes what is reported here and so the kernels chosen.
/// </summary>
public static class CpuIsa
{
    /// <summary>The widest vector width the JIT accelerates: 512, 256 or 128 bits.</summary>
    public static int VectorBits =>
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;

    /// <summary>Whether multiply-adds fuse in hardware: x86 with FMA, and every Arm64 core.</summary>
    internal static bool HasFma => Fma.IsSupported || AdvSimd.IsSupported;

    /// <summary>
    /// a·b + c, fused where the hardware fuses and rounded twice elsewhere (software fusing costs tens of cycles
    /// per element). Every GEMM path sums through these two, so a product's bits do not depend on the path its
    /// shape selects: a row scores the same alone and in a batch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        HasFma ? Vector256.FusedMultiplyAdd(a, b, c) : a * b + c;

    /// <inheritdoc cref="MulAdd(Vector256{float}, Vector256{float}, Vector256{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float MulAdd(float a, float b, float c) => HasFma ? MathF.FusedMultiplyAdd(a, b, c) : a * b + c;

    /// <summary>One line: the ISA the JIT reports and the convolution/GEMM kernels it selects.</summary>
    public static string Describe()
    {
        string isa = Avx512F.IsSupported ? "AVX-512F" : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA"
            : AdvSimd.IsSupported ? "Arm64 AdvSimd" : $"{VectorBits}-bit vectors";
        string convolutions = DirectConvolution.Bits > 0
            ? $"direct and Winograd convolutions ({DirectConvolution.Bits}-bit)" : "im2col convolutions";
        string gemm = Sgemm.KernelBits switch { 512 => "12×32", 256 => "6×16", _ => "6×8" } + $" GEMM tile ({Sgemm.KernelBits}-bit)";
        string kernels = $"{convolutions}, {gemm}";
        return $"{isa} ({VectorBits}-bit vectors): {kernels}";
    }
}
