namespace QuantPeft.Trainers.Data.Templates;

/// <summary>An expression of the template's syntax tree; <see cref="Line"/> locates errors.</summary>
internal abstract record Expr(int Line);

/// <summary>A literal: string, integer (long), float (double), bool or none (null).</summary>
internal sealed record LiteralExpr(object? Value, int Line) : Expr(Line);

/// <summary>A variable reference.</summary>
internal sealed record NameExpr(string Name, int Line) : Expr(Line);

/// <summary><c>[a, b]</c> or, with <see cref="IsTuple"/>, <c>(a, b)</c>.</summary>
internal sealed record ListExpr(IReadOnlyList<Expr> Items, bool IsTuple, int Line) : Expr(Line);

/// <summary><c>{k: v, ...}</c></summary>
internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items, int Line) : Expr(Line);

/// <summary><c>obj.name</c></summary>
internal sealed record AttributeExpr(Expr Target, string Name, int Line) : Expr(Line);

/// <summary><c>obj[key]</c></summary>
internal sealed record IndexExpr(Expr Target, Expr Key, int Line) : Expr(Line);

/// <summary><c>obj[start:stop:step]</c>; a missing bound is null.</summary>
internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);

/// <summary>Positional and keyword arguments of a call, filter or test.</summary>
internal sealed record Arguments(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Keywords)
{
    public static Arguments None { get; } = new([], []);
}

/// <summary><c>f(args)</c></summary>
internal sealed record CallExpr(Expr Target, Arguments Args, int Line) : Expr(Line);

/// <summary><c>value | name(args)</c></summary>
internal sealed record FilterExpr(Expr Value, string Name, Arguments Args, int Line) : Expr(Line);

/// <summary><c>value is [not] name(args)</c></summary>
internal sealed record TestExpr(Expr Value, string Name, Arguments Args, bool Negated, int Line) : Expr(Line);

/// <summary>A binary operator: arithmetic, <c>~</c>, comparison, <c>in</c>, <c>not in</c>, <c>and</c>, <c>or</c>.</summary>
internal sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Line) : Expr(Line);

/// <summary>A chain of comparisons <c>a &lt; b &lt;= c</c>, true when every link is.</summary>
internal sealed record CompareChainExpr(Expr First, IReadOnlyList<(string Op, Expr Right)> Links, int Line) : Expr(Line);

/// <summary><c>not x</c>, <c>-x</c>, <c>+x</c></summary>
internal sealed record UnaryExpr(string Op, Expr Operand, int Line) : Expr(Line);

/// <summary><c>a if cond else b</c>; without <c>else</c> the value is undefined when the condition fails.</summary>
internal sealed record ConditionalExpr(Expr Condition, Expr Then, Expr? Else, int Line) : Expr(Line);
