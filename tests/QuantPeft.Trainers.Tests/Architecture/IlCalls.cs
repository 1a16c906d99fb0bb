using System.Reflection;
using System.Reflection.Emit;

namespace QuantPeft.Trainers.Tests.Architecture;

/// <summary>
/// The methods a method body calls (call, callvirt, newobj, ldftn), read from its IL with the runtime's own opcode
/// table, so that operand bytes are never mistaken for opcodes.
/// </summary>
internal static class IlCalls
{
    private static readonly Dictionary<short, OpCode> Codes = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    public const BindingFlags Declared =
        BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>Every method and constructor declared by <paramref name="type"/> that has a body.</summary>
    public static IEnumerable<MethodBase> BodiesOf(Type type) =>
        type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared))
            .Where(m => m.GetMethodBody() is not null);

    /// <summary>The methods <paramref name="method"/>'s body calls; methods whose token cannot be resolved are skipped.</summary>
    public static IEnumerable<MethodBase> Of(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or BadImageFormatException) { yield break; }
        if (il is null) yield break;
        Type[]? typeArgs = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            OpCode op = Codes[value];
            int operandAt = i;
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (op.OperandType != OperandType.InlineMethod) continue;
            MethodBase? callee = null;
            try { callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, operandAt), typeArgs, methodArgs); }
            catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or FileNotFoundException) { }
            if (callee is not null) yield return callee;
        }
    }
}
