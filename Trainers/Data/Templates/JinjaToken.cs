namespace QuantPeft.Trainers.Data.Templates;

/// <summary>The kinds of token the Jinja lexer produces.</summary>
internal enum JinjaTokenKind
{
    /// <summary>Template text outside any tag, after whitespace control.</summary>
    Text,
    /// <summary><c>{{</c></summary>
    PrintBegin,
    /// <summary><c>}}</c></summary>
    PrintEnd,
    /// <summary><c>{%</c></summary>
    BlockBegin,
    /// <summary><c>%}</c></summary>
    BlockEnd,
    /// <summary>An identifier (keywords included).</summary>
    Name,
    /// <summary>A string literal, escapes already decoded.</summary>
    String,
    /// <summary>An integer literal.</summary>
    Integer,
    /// <summary>A floating-point literal.</summary>
    Float,
    /// <summary>Punctuation or an operator.</summary>
    Operator,
    /// <summary>End of the template.</summary>
    End,
}

/// <summary>One token with the 1-based template line it starts on.</summary>
internal readonly record struct JinjaToken(JinjaTokenKind Kind, string Value, int Line)
{
    public bool Is(JinjaTokenKind kind, string value) => Kind == kind && Value == value;

    public bool IsName(string value) => Is(JinjaTokenKind.Name, value);

    public bool IsOp(string value) => Is(JinjaTokenKind.Operator, value);

    public override string ToString() => Kind switch
    {
        JinjaTokenKind.End => "the end of the template",
        JinjaTokenKind.Text => "template text",
        JinjaTokenKind.String => $"the string '{Value}'",
        _ => $"'{Value}'",
    };
}
