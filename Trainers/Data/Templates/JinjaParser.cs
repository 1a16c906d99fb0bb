using System.Globalization;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// Builds the statement tree of a template from its tokens, with Jinja's operator precedence
/// (<c>or</c> &lt; <c>and</c> &lt; <c>not</c> &lt; comparisons, <c>in</c>, <c>is</c> &lt; <c>+ -</c> &lt; <c>~</c>
/// &lt; <c>* / // %</c> &lt; <c>**</c> &lt; unary minus &lt; filters and postfix). A statement, filter or test
/// QuantPeft does not implement is an error here, with the line, even in a branch that would never run.
/// </summary>
internal sealed class JinjaParser
{
    private static readonly HashSet<string> EndOfTestArgument = ["and", "or", "else", "if", "in", "not", "is"];
    private readonly List<JinjaToken> _tokens;
    private readonly string _name;
    private int _i;

    private JinjaParser(List<JinjaToken> tokens, string name)
    {
        _tokens = tokens;
        _name = name;
    }

    /// <summary>Parses a whole template.</summary>
    public static IReadOnlyList<Node> Parse(string source, string name)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source, name), name);
        var body = parser.Body(out string? end);
        if (end is not null) throw parser.Error($"'{{% {end} %}}' without an opening statement");
        return body;
    }

    private JinjaToken Peek(int ahead = 0) => _tokens[Math.Min(_i + ahead, _tokens.Count - 1)];

    private JinjaToken Next() => _tokens[_i++];

    private TemplateException Error(string problem, int? line = null) => new(_name, line ?? Peek().Line, problem);

    private JinjaToken Expect(JinjaTokenKind kind, string? value = null)
    {
        JinjaToken t = Peek();
        if (t.Kind != kind || (value is not null && t.Value != value))
            throw Error($"expected {(value is null ? kind.ToString().ToLowerInvariant() : $"'{value}'")}, found {t}");
        return Next();
    }

    private bool SkipOp(string op)
    {
        if (!Peek().IsOp(op)) return false;
        _i++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!Peek().IsName(name)) return false;
        _i++;
        return true;
    }

    private static readonly HashSet<string> Terminators =
        ["elif", "else", "endif", "endfor", "endmacro", "endset", "endgeneration", "endfilter"];

    /// <summary>Statements up to a terminator tag (returned in <paramref name="end"/>, its tokens left for the caller) or the end.</summary>
    private List<Node> Body(out string? end)
    {
        var nodes = new List<Node>();
        while (true)
        {
            JinjaToken t = Peek();
            switch (t.Kind)
            {
                case JinjaTokenKind.End:
                    end = null;
                    return nodes;
                case JinjaTokenKind.Text:
                    nodes.Add(new TextNode(Next().Value, t.Line));
                    break;
                case JinjaTokenKind.PrintBegin:
                    Next();
                    nodes.Add(new PrintNode(Expression(), t.Line));
                    Expect(JinjaTokenKind.PrintEnd);
                    break;
                case JinjaTokenKind.BlockBegin:
                    JinjaToken keyword = Peek(1);
                    if (keyword.Kind == JinjaTokenKind.Name && Terminators.Contains(keyword.Value))
                    {
                        end = keyword.Value;
                        return nodes;
                    }
                    Next();
                    nodes.Add(Statement());
                    break;
                default:
                    throw Error($"unexpected {t}");
            }
        }
    }

    private void ExpectEnd(string keyword, int openLine)
    {
        if (!Peek().Is(JinjaTokenKind.BlockBegin, "{%") || !Peek(1).IsName(keyword))
            throw Error($"expected '{{% {keyword} %}}' to close the statement of line {openLine}, found {Peek(1)}");
        _i += 2;
        Expect(JinjaTokenKind.BlockEnd);
    }

    private Node Statement()
    {
        JinjaToken keyword = Expect(JinjaTokenKind.Name);
        int line = keyword.Line;
        switch (keyword.Value)
        {
            case "if": return If(line);
            case "for": return For(line);
            case "set": return Set(line);
            case "macro": return Macro(line);
            case "break" or "continue":
                Expect(JinjaTokenKind.BlockEnd);
                return new LoopControlNode(keyword.Value == "break", line);
            case "generation":
            {
                Expect(JinjaTokenKind.BlockEnd);
                var body = Body(out _);
                ExpectEnd("endgeneration", line);
                return new GenerationNode(body, line);
            }
            case "filter":
            {
                string name = Expect(JinjaTokenKind.Name).Value;
                JinjaFilters.Check(name, _name, line);
                Arguments args = Peek().IsOp("(") ? CallArguments() : Arguments.None;
                Expect(JinjaTokenKind.BlockEnd);
                var body = Body(out _);
                ExpectEnd("endfilter", line);
                return new FilterBlockNode(name, args, body, line);
            }
            default:
                throw Error($"unsupported statement '{{% {keyword.Value} %}}'", line);
        }
    }

    private IfNode If(int line)
    {
        var branches = new List<(Expr?, IReadOnlyList<Node>)>();
        Expr condition = Expression();
        Expect(JinjaTokenKind.BlockEnd);
        while (true)
        {
            var body = Body(out string? end);
            branches.Add((condition, body));
            if (end is null) throw Error($"'{{% if %}}' of line {line} is never closed with '{{% endif %}}'", line);
            _i += 2;
            if (end == "endif")
            {
                Expect(JinjaTokenKind.BlockEnd);
                return new IfNode(branches, line);
            }
            if (end == "elif")
            {
                condition = Expression();
                Expect(JinjaTokenKind.BlockEnd);
                continue;
            }
            if (end != "else") throw Error($"'{{% {end} %}}' inside the '{{% if %}}' of line {line}");
            Expect(JinjaTokenKind.BlockEnd);
            var elseBody = Body(out end);
            if (end != "endif") throw Error($"expected '{{% endif %}}' to close the '{{% if %}}' of line {line}");
            _i += 2;
            Expect(JinjaTokenKind.BlockEnd);
            branches.Add((null, elseBody));
            return new IfNode(branches, line);
        }
    }

    private ForNode For(int line)
    {
        var targets = new List<string> { Expect(JinjaTokenKind.Name).Value };
        while (SkipOp(",")) targets.Add(Expect(JinjaTokenKind.Name).Value);
        if (!SkipName("in")) throw Error($"expected 'in' in the '{{% for %}}', found {Peek()}");
        Expr iterable = Conditional(allowConditional: false);
        Expr? filter = SkipName("if") ? Conditional(allowConditional: false) : null;
        if (Peek().IsName("recursive")) throw Error("unsupported construct 'recursive' loops");
        Expect(JinjaTokenKind.BlockEnd);
        var body = Body(out string? end);
        IReadOnlyList<Node> elseBody = [];
        if (end == "else")
        {
            _i += 2;
            Expect(JinjaTokenKind.BlockEnd);
            elseBody = Body(out end);
        }
        if (end != "endfor") throw Error($"'{{% for %}}' of line {line} is never closed with '{{% endfor %}}'", end is null ? line : null);
        _i += 2;
        Expect(JinjaTokenKind.BlockEnd);
        return new ForNode(targets, iterable, filter, body, elseBody, line);
    }

    private Node Set(int line)
    {
        string first = Expect(JinjaTokenKind.Name).Value;
        if (SkipOp("."))
        {
            string attr = Expect(JinjaTokenKind.Name).Value;
            Expect(JinjaTokenKind.Operator, "=");
            Expr value = Expression();
            Expect(JinjaTokenKind.BlockEnd);
            return new SetNode([first], attr, value, line);
        }
        var targets = new List<string> { first };
        while (SkipOp(",")) targets.Add(Expect(JinjaTokenKind.Name).Value);
        if (Peek().Kind == JinjaTokenKind.BlockEnd && targets.Count == 1)
        {
            Next();
            var body = Body(out _);
            ExpectEnd("endset", line);
            return new SetBlockNode(first, body, line);
        }
        Expect(JinjaTokenKind.Operator, "=");
        Expr v = Expression();
        Expect(JinjaTokenKind.BlockEnd);
        return new SetNode(targets, null, v, line);
    }

    private MacroNode Macro(int line)
    {
        string name = Expect(JinjaTokenKind.Name).Value;
        Expect(JinjaTokenKind.Operator, "(");
        var parameters = new List<(string, Expr?)>();
        while (!SkipOp(")"))
        {
            if (parameters.Count > 0) Expect(JinjaTokenKind.Operator, ",");
            if (SkipOp(")")) break;
            string p = Expect(JinjaTokenKind.Name).Value;
            parameters.Add((p, SkipOp("=") ? Conditional(allowConditional: true) : null));
        }
        Expect(JinjaTokenKind.BlockEnd);
        var body = Body(out _);
        ExpectEnd("endmacro", line);
        return new MacroNode(name, parameters, body, line);
    }

    // ---- expressions ----

    /// <summary>A full expression; a bare comma list is a tuple (as in <c>{% set a, b = 1, 2 %}</c>).</summary>
    private Expr Expression()
    {
        int line = Peek().Line;
        Expr first = Conditional(allowConditional: true);
        if (!Peek().IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (SkipOp(","))
        {
            if (Peek().Kind is JinjaTokenKind.BlockEnd or JinjaTokenKind.PrintEnd) break;
            items.Add(Conditional(allowConditional: true));
        }
        return new ListExpr(items, IsTuple: true, line);
    }

    private Expr Conditional(bool allowConditional)
    {
        Expr value = Or();
        while (allowConditional && Peek().IsName("if"))
        {
            int line = Next().Line;
            Expr condition = Or();
            Expr? otherwise = SkipName("else") ? Conditional(allowConditional: true) : null;
            value = new ConditionalExpr(condition, value, otherwise, line);
        }
        return value;
    }

    private Expr Or()
    {
        Expr left = And();
        while (Peek().IsName("or"))
        {
            int line = Next().Line;
            left = new BinaryExpr("or", left, And(), line);
        }
        return left;
    }

    private Expr And()
    {
        Expr left = Not();
        while (Peek().IsName("and"))
        {
            int line = Next().Line;
            left = new BinaryExpr("and", left, Not(), line);
        }
        return left;
    }

    private Expr Not()
    {
        if (Peek().IsName("not"))
        {
            int line = Next().Line;
            return new UnaryExpr("not", Not(), line);
        }
        return Compare();
    }

    private Expr Compare()
    {
        int line = Peek().Line;
        Expr first = Add();
        var links = new List<(string, Expr)>();
        while (true)
        {
            JinjaToken t = Peek();
            if (t.Kind == JinjaTokenKind.Operator && t.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                Next();
                links.Add((t.Value, Add()));
            }
            else if (t.IsName("in"))
            {
                Next();
                links.Add(("in", Add()));
            }
            else if (t.IsName("not") && Peek(1).IsName("in"))
            {
                _i += 2;
                links.Add(("not in", Add()));
            }
            else break;
        }
        return links.Count == 0 ? first : new CompareChainExpr(first, links, line);
    }

    private Expr Add()
    {
        Expr left = Concat();
        while (Peek().Kind == JinjaTokenKind.Operator && Peek().Value is "+" or "-")
        {
            JinjaToken op = Next();
            left = new BinaryExpr(op.Value, left, Concat(), op.Line);
        }
        return left;
    }

    private Expr Concat()
    {
        Expr left = Multiply();
        while (Peek().IsOp("~"))
        {
            int line = Next().Line;
            left = new BinaryExpr("~", left, Multiply(), line);
        }
        return left;
    }

    private Expr Multiply()
    {
        Expr left = Power();
        while (Peek().Kind == JinjaTokenKind.Operator && Peek().Value is "*" or "/" or "//" or "%")
        {
            JinjaToken op = Next();
            left = new BinaryExpr(op.Value, left, Power(), op.Line);
        }
        return left;
    }

    private Expr Power()
    {
        Expr left = Unary(withFilter: true);
        while (Peek().IsOp("**"))
        {
            int line = Next().Line;
            left = new BinaryExpr("**", left, Unary(withFilter: true), line);
        }
        return left;
    }

    private Expr Unary(bool withFilter)
    {
        JinjaToken t = Peek();
        Expr node;
        if (t.Kind == JinjaTokenKind.Operator && t.Value is "-" or "+")
        {
            Next();
            node = new UnaryExpr(t.Value, Unary(withFilter: false), t.Line);
        }
        else node = Postfix(Primary());
        return withFilter ? FiltersAndTests(node) : node;
    }

    private Expr FiltersAndTests(Expr node)
    {
        while (true)
        {
            if (Peek().IsOp("|"))
            {
                int line = Next().Line;
                string name = Expect(JinjaTokenKind.Name).Value;
                JinjaFilters.Check(name, _name, line);
                Arguments args = Peek().IsOp("(") ? CallArguments() : Arguments.None;
                node = Postfix(new FilterExpr(node, name, args, line));
            }
            else if (Peek().IsName("is"))
            {
                int line = Next().Line;
                bool negated = SkipName("not");
                JinjaToken nameToken = Next();
                // 'none', 'true' and 'false' are names here; 'is none' is the test.
                if (nameToken.Kind != JinjaTokenKind.Name) throw Error($"expected a test name after 'is', found {nameToken}", line);
                string name = nameToken.Value;
                JinjaTests.Check(name, _name, line);
                Arguments args;
                if (Peek().IsOp("(")) args = CallArguments();
                else if (StartsTestArgument(Peek())) args = new Arguments([Postfix(Primary())], []);
                else args = Arguments.None;
                node = new TestExpr(node, name, args, negated, line);
            }
            else return node;
        }
    }

    private static bool StartsTestArgument(JinjaToken t) => t.Kind switch
    {
        JinjaTokenKind.String or JinjaTokenKind.Integer or JinjaTokenKind.Float => true,
        JinjaTokenKind.Name => !EndOfTestArgument.Contains(t.Value),
        JinjaTokenKind.Operator => t.Value is "[" or "{",
        _ => false,
    };

    private Expr Primary()
    {
        JinjaToken t = Next();
        switch (t.Kind)
        {
            case JinjaTokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, t.Line),
                    "false" or "False" => new LiteralExpr(false, t.Line),
                    "none" or "None" => new LiteralExpr(null, t.Line),
                    _ => new NameExpr(t.Value, t.Line),
                };
            case JinjaTokenKind.String:
                string s = t.Value;
                while (Peek().Kind == JinjaTokenKind.String) s += Next().Value;   // adjacent literals join, as in Python
                return new LiteralExpr(s, t.Line);
            case JinjaTokenKind.Integer:
                return new LiteralExpr(long.Parse(t.Value, CultureInfo.InvariantCulture), t.Line);
            case JinjaTokenKind.Float:
                return new LiteralExpr(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Line);
            case JinjaTokenKind.Operator when t.Value == "(":
            {
                if (SkipOp(")")) return new ListExpr([], IsTuple: true, t.Line);
                Expr first = Conditional(allowConditional: true);
                if (SkipOp(")")) return first;
                var items = new List<Expr> { first };
                while (SkipOp(","))
                {
                    if (Peek().IsOp(")")) break;
                    items.Add(Conditional(allowConditional: true));
                }
                Expect(JinjaTokenKind.Operator, ")");
                return new ListExpr(items, IsTuple: true, t.Line);
            }
            case JinjaTokenKind.Operator when t.Value == "[":
            {
                var items = new List<Expr>();
                while (!SkipOp("]"))
                {
                    if (items.Count > 0) Expect(JinjaTokenKind.Operator, ",");
                    if (SkipOp("]")) break;
                    items.Add(Conditional(allowConditional: true));
                }
                return new ListExpr(items, IsTuple: false, t.Line);
            }
            case JinjaTokenKind.Operator when t.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!SkipOp("}"))
                {
                    if (items.Count > 0) Expect(JinjaTokenKind.Operator, ",");
                    if (SkipOp("}")) break;
                    Expr key = Conditional(allowConditional: true);
                    Expect(JinjaTokenKind.Operator, ":");
                    items.Add((key, Conditional(allowConditional: true)));
                }
                return new DictExpr(items, t.Line);
            }
            default:
                throw Error($"unexpected {t} in an expression", t.Line);
        }
    }

    private Expr Postfix(Expr node)
    {
        while (true)
        {
            JinjaToken t = Peek();
            if (t.IsOp("."))
            {
                Next();
                JinjaToken name = Next();
                if (name.Kind == JinjaTokenKind.Integer) node = new IndexExpr(node, new LiteralExpr(long.Parse(name.Value, CultureInfo.InvariantCulture), name.Line), name.Line);
                else if (name.Kind == JinjaTokenKind.Name) node = new AttributeExpr(node, name.Value, name.Line);
                else throw Error($"expected an attribute name after '.', found {name}", name.Line);
            }
            else if (t.IsOp("["))
            {
                Next();
                node = Subscript(node, t.Line);
            }
            else if (t.IsOp("("))
                node = new CallExpr(node, CallArguments(), t.Line);
            else return node;
        }
    }

    private Expr Subscript(Expr target, int line)
    {
        Expr? start = null, stop = null, step = null;
        bool slice = false;
        if (!Peek().IsOp(":")) start = Conditional(allowConditional: true);
        if (SkipOp(":"))
        {
            slice = true;
            if (!Peek().IsOp(":") && !Peek().IsOp("]")) stop = Conditional(allowConditional: true);
            if (SkipOp(":") && !Peek().IsOp("]")) step = Conditional(allowConditional: true);
        }
        Expect(JinjaTokenKind.Operator, "]");
        return slice ? new SliceExpr(target, start, stop, step, line) : new IndexExpr(target, start!, line);
    }

    private Arguments CallArguments()
    {
        Expect(JinjaTokenKind.Operator, "(");
        var positional = new List<Expr>();
        var keywords = new List<(string, Expr)>();
        while (!SkipOp(")"))
        {
            if (positional.Count + keywords.Count > 0) Expect(JinjaTokenKind.Operator, ",");
            if (SkipOp(")")) break;
            if (Peek().Kind == JinjaTokenKind.Name && Peek(1).IsOp("="))
            {
                string name = Next().Value;
                Next();
                keywords.Add((name, Conditional(allowConditional: true)));
            }
            else
            {
                if (keywords.Count > 0) throw Error("a positional argument follows a keyword argument");
                positional.Add(Conditional(allowConditional: true));
            }
        }
        return new Arguments(positional, keywords);
    }
}
