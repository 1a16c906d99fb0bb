using System.Reflection;
using TorchSharp;

namespace QuantPeft.Trainers.Tests.Architecture;

/// <summary>
/// No QuantPeft method hands libtorch a Scalar that only the finalizer owns. TorchSharp converts a number to a
/// native Scalar implicitly, and some of its own members do so inside (one-operand <c>add</c>, <c>square</c>, the
/// number operators); nothing keeps that object reachable while the native op reads it, so a collection on another
/// thread can free it mid-call: the libtorch <c>toFloat</c> error (Scalar.h:140) that aborted training runs under the
/// peak probe. Which TorchSharp members do it is read from TorchSharp's own IL, so a new TorchSharp version is checked
/// as it is, not against a list.
/// </summary>
public sealed class FinalizerOwnedScalarTests
{
    private static readonly Assembly TorchSharpAssembly = typeof(Scalar).Assembly;

    private static readonly Assembly[] Ours =
    [
        typeof(QuantPeft.Quant.Torch.ScalarOps).Assembly,
        typeof(QuantPeft.Optimizers.OptimizerFactory).Assembly,
        typeof(QuantPeft.Memory.Probes.NativeHeap).Assembly,
        typeof(QuantPeft.Trainers.Recipes.FinetuneRecipe).Assembly,
    ];

    [Fact]
    public void NoQuantPeftMethodMakesAFinalizerOwnedScalar()
    {
        var hazards = new Dictionary<MethodBase, bool>();
        var found = new List<string>();
        foreach (Assembly assembly in Ours)
        foreach (Type type in assembly.GetTypes())
        foreach (MethodBase method in IlCalls.BodiesOf(type))
        {
            var bad = IlCalls.Of(method).Where(c => MakesImplicitScalar(c, hazards, depth: 0)).Select(Describe).Distinct().ToList();
            if (bad.Count > 0) found.Add($"{type.FullName}.{method.Name}: {string.Join(", ", bad)}");
        }
        Assert.True(found.Count == 0,
            $"{found.Count} methods make a Scalar nothing keeps alive (use QuantPeft.Quant.Torch.ScalarOps or a held Scalar):\n  "
            + string.Join("\n  ", found.Order()));
    }

    [Fact]
    public void TheScanFindsTheKnownTorchSharpCases()
    {
        // The check must be able to fail: these TorchSharp members are known to convert a number inside.
        var hazards = new Dictionary<MethodBase, bool>();
        Type tensor = typeof(torch.Tensor);
        Assert.True(MakesImplicitScalar(tensor.GetMethod("add_", [tensor])!, hazards, 0), "add_(Tensor) passes alpha = 1");
        Assert.True(MakesImplicitScalar(tensor.GetMethod("square", Type.EmptyTypes)!, hazards, 0), "square() is pow(2)");
        Assert.True(MakesImplicitScalar(typeof(Scalar).GetMethod("op_Implicit", [typeof(double)])!, hazards, 0));
        // And it does not flag what holds its Scalars: add_(Tensor, Scalar) takes the caller's.
        Assert.False(MakesImplicitScalar(tensor.GetMethod("add_", [tensor, typeof(Scalar)])!, hazards, 0));
        Assert.False(MakesImplicitScalar(typeof(QuantPeft.Quant.Torch.ScalarOps).GetMethod("AddInPlace", [tensor, tensor])!, hazards, 0));
    }

    /// <summary>
    /// Whether calling <paramref name="method"/> creates a Scalar by implicit conversion: it is the conversion, or a
    /// TorchSharp method that calls it (directly or through other TorchSharp methods). Calls into QuantPeft are judged
    /// where they are declared.
    /// </summary>
    private static bool MakesImplicitScalar(MethodBase method, Dictionary<MethodBase, bool> memo, int depth)
    {
        if (method.DeclaringType == typeof(Scalar) && method.Name == "op_Implicit") return true;
        if (method.DeclaringType?.Assembly != TorchSharpAssembly) return false;
        if (memo.TryGetValue(method, out bool known)) return known;
        memo[method] = false; // cycles: assume safe while this method is being read
        bool result = IlCalls.Of(method).Any(c => MakesImplicitScalar(c, memo, depth + 1));
        memo[method] = result;
        return result;
    }

    private static string Describe(MethodBase m) =>
        $"{m.DeclaringType?.Name}.{m.Name}({string.Join(",", m.GetParameters().Select(p => p.ParameterType.Name))})";
}
