using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// One vector width for the width-generic kernels. A kernel is written once as a generic method over
/// <c>S : struct, ISimd&lt;V&gt;</c>; the JIT compiles a separate copy per width with every call here inlined, so the
/// 512-, 256- and 128-bit copies are as fast as hand-written ones. <see cref="W512"/> is AVX-512, <see cref="W256"/>
/// AVX2 + FMA, <see cref="W128"/> SSE or Arm64 AdvSimd.
/// </summary>
internal unsafe interface ISimd<V> where V : struct
{
    /// <summary>Floats per vector.</summary>
    static abstract int Lanes { get; }

    /// <summary>Architectural vector registers: 32 with AVX-512 and on Arm64, 16 on x86 without AVX-512.</summary>
    static abstract int Registers { get; }

    /// <summary>Whether this processor runs the width in hardware.</summary>
    static abstract bool IsSupported { get; }

    static abstract V Zero { get; }

    static abstract V Load(float* source);

    static abstract void Store(float* target, V value);

    static abstract V Broadcast(float value);

    static abstract V Add(V a, V b);

    static abstract V Subtract(V a, V b);

    static abstract V Multiply(V a, V b);

    static abstract V Abs(V v);

    /// <summary>The lanes' sum, in the order the width's <c>Vector*.Sum</c> adds them.</summary>
    static abstract float Sum(V v);

    /// <summary>a·b + c: fused where the hardware fuses, rounded twice elsewhere (as <see cref="CpuIsa.MulAdd(float, float, float)"/>).</summary>
    static abstract V MulAdd(V a, V b, V c);

    /// <summary>The first <paramref name="count"/> floats at <paramref name="source"/>, the other lanes zero (nothing past them is read).</summary>
    static abstract V LoadPrefix(float* source, int count);

    /// <summary>Stores the first <paramref name="count"/> lanes; the memory past them is not touched.</summary>
    static abstract void StorePrefix(float* target, V value, int count);
}

/// <summary>512-bit vectors (AVX-512F).</summary>
internal readonly unsafe struct W512 : ISimd<Vector512<float>>
{
    public static int Lanes => 16;
    public static int Registers => 32;
    public static bool IsSupported => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* target, Vector512<float> value) => Vector512.Store(value, target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Vector512.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Abs(Vector512<float> v) => Vector512.Abs(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MulAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadPrefix(float* source, int count) =>
        Avx512F.MaskLoad(source, ChannelsLast.PrefixMask(count), Vector512<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePrefix(float* target, Vector512<float> value, int count) =>
        Avx512F.MaskStore(target, ChannelsLast.PrefixMask(count), value);
}

/// <summary>256-bit vectors (AVX2 with FMA; without FMA products and sums round separately).</summary>
internal readonly unsafe struct W256 : ISimd<Vector256<float>>
{
    public static int Lanes => 8;
    public static int Registers => Avx512F.IsSupported ? 32 : 16;
    public static bool IsSupported => Vector256.IsHardwareAccelerated;
    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* target, Vector256<float> value) => Vector256.Store(value, target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v) => Vector256.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Abs(Vector256<float> v) => Vector256.Abs(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => CpuIsa.MulAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadPrefix(float* source, int count)
    {
        if (count >= 8) return Vector256.Load(source);
        if (Avx.IsSupported) return Avx.MaskLoad(source, Mask(count));
        var value = Vector256<float>.Zero;
        for (int i = 0; i < count; i++) value = value.WithElement(i, source[i]);
        return value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePrefix(float* target, Vector256<float> value, int count)
    {
        if (count >= 8) Vector256.Store(value, target);
        else if (Avx.IsSupported) Avx.MaskStore(target, Mask(count), value);
        else for (int i = 0; i < count; i++) target[i] = value.GetElement(i);
    }

    private static Vector256<float> Mask(int count) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();
}

/// <summary>128-bit vectors: SSE on x86 (FMA where AVX2's FMA is on), AdvSimd on Arm64 (always fused).</summary>
internal readonly unsafe struct W128 : ISimd<Vector128<float>>
{
    public static int Lanes => 4;
    public static int Registers => Avx512F.IsSupported || AdvSimd.IsSupported ? 32 : 16;
    public static bool IsSupported => Vector128.IsHardwareAccelerated;
    public static Vector128<float> Zero => Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* source) => Vector128.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* target, Vector128<float> value) => Vector128.Store(value, target);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v) => Vector128.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Abs(Vector128<float> v) => Vector128.Abs(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        CpuIsa.HasFma ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadPrefix(float* source, int count)
    {
        if (count >= 4) return Vector128.Load(source);
        var value = Vector128<float>.Zero;
        for (int i = 0; i < count; i++) value = value.WithElement(i, source[i]);
        return value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePrefix(float* target, Vector128<float> value, int count)
    {
        if (count >= 4) Vector128.Store(value, target);
        else for (int i = 0; i < count; i++) target[i] = value.GetElement(i);
    }
}
