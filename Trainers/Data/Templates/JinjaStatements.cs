namespace QuantPeft.Trainers.Data.Templates;

/// <summary>A node of the template's statement tree; <see cref="Line"/> locates errors.</summary>
internal abstract record Node(int Line);

/// <summary>Template text, written as is.</summary>
internal sealed record TextNode(string Text, int Line) : Node(Line);

/// <summary><c>{{ expr }}</c></summary>
internal sealed record PrintNode(Expr Value, int Line) : Node(Line);

/// <summary><c>{% if %}…{% elif %}…{% else %}…{% endif %}</c>: the first branch whose condition holds; a null condition is <c>else</c>.</summary>
internal sealed record IfNode(IReadOnlyList<(Expr? Condition, IReadOnlyList<Node> Body)> Branches, int Line) : Node(Line);

/// <summary><c>{% for targets in iterable [if filter] [recursive] %}…{% else %}…{% endfor %}</c></summary>
internal sealed record ForNode(IReadOnlyList<string> Targets, Expr Iterable, Expr? Filter, IReadOnlyList<Node> Body, IReadOnlyList<Node> Else, int Line) : Node(Line);

/// <summary><c>{% set a = x %}</c>, <c>{% set a, b = x %}</c> or <c>{% set ns.attr = x %}</c> (<see cref="Attribute"/> non-null).</summary>
internal sealed record SetNode(IReadOnlyList<string> Targets, string? Attribute, Expr Value, int Line) : Node(Line);

/// <summary><c>{% set a %}…{% endset %}</c>: the rendered body becomes a string variable.</summary>
internal sealed record SetBlockNode(string Target, IReadOnlyList<Node> Body, int Line) : Node(Line);

/// <summary><c>{% macro name(a, b=default) %}…{% endmacro %}</c></summary>
internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Node> Body, int Line) : Node(Line);

/// <summary><c>{% break %}</c> or <c>{% continue %}</c> (the loopcontrols extension transformers enables).</summary>
internal sealed record LoopControlNode(bool Break, int Line) : Node(Line);

/// <summary><c>{% generation %}…{% endgeneration %}</c>: transformers' marker of assistant text; renders its body.</summary>
internal sealed record GenerationNode(IReadOnlyList<Node> Body, int Line) : Node(Line);

/// <summary><c>{% filter name %}…{% endfilter %}</c>: the rendered body passed through a filter.</summary>
internal sealed record FilterBlockNode(string Filter, Arguments Args, IReadOnlyList<Node> Body, int Line) : Node(Line);
