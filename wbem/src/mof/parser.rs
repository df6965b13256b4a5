//! Recursive-descent parser from tokens to the syntax tree (DSP0004 ANNEX A, the 2.x grammar that
//! real schemas use). It stops at the first syntax error: after a missing brace nothing that follows
//! can be trusted, and the message says what was expected where.

use super::ast::*;
use super::diag::{Pos, SyntaxError};
use super::lexer::{tokenize, Tok, Token};

/// Parses one MOF text.
pub fn parse(src: &str) -> Result<Vec<Production>, SyntaxError> {
    let mut p = Parser { toks: tokenize(src)?, i: 0 };
    let mut out = Vec::new();
    while p.peek() != &Tok::Eof {
        out.push(p.production()?);
    }
    Ok(out)
}

/// Parses a text that must hold only instance declarations (an embedded instance sent as MOF).
pub fn parse_instances(src: &str) -> Result<Vec<InstanceDecl>, SyntaxError> {
    let mut p = Parser { toks: tokenize(src)?, i: 0 };
    let mut out = Vec::new();
    while p.peek() != &Tok::Eof {
        let pos = p.pos();
        let qualifiers = p.qualifier_list_opt()?;
        if !p.peek_keyword("instance") {
            return Err(p.unexpected("'instance of'"));
        }
        out.push(p.instance(qualifiers, pos)?);
    }
    Ok(out)
}

const FLAVORS: [&str; 6] = ["EnableOverride", "DisableOverride", "Restricted", "ToSubclass", "ToInstance", "Translatable"];

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_nth(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }

    fn advance(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.advance();
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_keyword(kw) {
            self.advance();
            true
        } else {
            false
        }
    }

    /// "expected X, found Y" at the offending token.
    fn unexpected(&self, expected: &str) -> SyntaxError {
        SyntaxError::new(self.pos(), format!("expected {expected}, found {}", self.peek().describe()))
    }

    fn expect(&mut self, tok: Tok, context: &str) -> Result<Pos, SyntaxError> {
        if self.peek() == &tok {
            Ok(self.advance().pos)
        } else {
            Err(self.unexpected(&format!("{} {context}", tok.describe())))
        }
    }

    fn expect_keyword(&mut self, kw: &str, context: &str) -> Result<Pos, SyntaxError> {
        if self.peek_keyword(kw) {
            Ok(self.advance().pos)
        } else {
            Err(self.unexpected(&format!("'{kw}' {context}")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<Ident, SyntaxError> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let pos = self.advance().pos;
                Ok(Ident { name, pos })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn production(&mut self) -> Result<Production, SyntaxError> {
        let pos = self.pos();
        if self.eat(&Tok::Pragma) {
            return self.pragma(pos).map(Production::Pragma);
        }
        if self.peek_keyword("qualifier") {
            return self.qualifier_declaration().map(Production::Qualifier);
        }
        let had_qualifiers = self.peek() == &Tok::LBracket;
        let qualifiers = self.qualifier_list_opt()?;
        if self.peek_keyword("class") {
            self.class(qualifiers, pos).map(Production::Class)
        } else if self.peek_keyword("instance") {
            self.instance(qualifiers, pos).map(Production::Instance)
        } else if had_qualifiers {
            Err(self.unexpected("'class' or 'instance' after qualifier list"))
        } else {
            Err(self.unexpected("'class', 'instance', 'qualifier' or '#pragma'"))
        }
    }

    fn pragma(&mut self, pos: Pos) -> Result<Pragma, SyntaxError> {
        let name = self.ident("a pragma name after '#pragma'")?;
        self.expect(Tok::LParen, &format!("after '#pragma {}'", name.name))?;
        let value_pos = self.pos();
        let value = match self.peek() {
            Tok::Str(_) => self.strings(),
            _ => return Err(self.unexpected("a string parameter of the pragma")),
        };
        self.expect(Tok::RParen, "after the pragma parameter")?;
        Ok(Pragma { name, value, value_pos, pos })
    }

    /// One or more adjacent string literals, joined.
    fn strings(&mut self) -> String {
        let mut s = String::new();
        while let Tok::Str(part) = self.peek() {
            s.push_str(part);
            self.advance();
        }
        s
    }

    fn qualifier_declaration(&mut self) -> Result<QualifierDeclaration, SyntaxError> {
        let pos = self.advance().pos;
        let name = self.ident("a qualifier name after 'qualifier'")?;
        self.expect(Tok::Colon, &format!("after qualifier name '{}'", name.name))?;
        let ty_pos = self.pos();
        let ty_name = self.ident("a qualifier type")?;
        let ty = PrimType::from_name(&ty_name.name)
            .ok_or_else(|| SyntaxError::new(ty_pos, format!("unknown type name '{}' (qualifiers have intrinsic types)", ty_name.name)))?;
        let array = self.array_spec()?;
        let default = if self.eat(&Tok::Equals) { Some(self.value(false)?) } else { None };
        self.expect(Tok::Comma, "before 'Scope' in qualifier declaration")?;
        self.expect_keyword("Scope", "in qualifier declaration")?;
        let scopes = self.keyword_list("scope")?;
        let mut flavors = Vec::new();
        if self.eat(&Tok::Comma) {
            self.expect_keyword("Flavor", "after ',' in qualifier declaration")?;
            flavors = self.keyword_list("flavor")?;
        }
        self.expect(Tok::Semicolon, "after qualifier declaration")?;
        Ok(QualifierDeclaration { name, ty, ty_pos, array, default, scopes, flavors, pos })
    }

    /// `( word, word, ... )` of a qualifier declaration's scope or flavor.
    fn keyword_list(&mut self, what: &str) -> Result<Vec<Ident>, SyntaxError> {
        self.expect(Tok::LParen, &format!("after '{}'", capitalized(what)))?;
        let mut words = vec![self.ident(&format!("a {what} name"))?];
        while self.eat(&Tok::Comma) {
            words.push(self.ident(&format!("a {what} name"))?);
        }
        self.expect(Tok::RParen, &format!("after {what} list"))?;
        Ok(words)
    }

    fn qualifier_list_opt(&mut self) -> Result<Vec<QualifierUse>, SyntaxError> {
        if !self.eat(&Tok::LBracket) {
            return Ok(Vec::new());
        }
        let mut list = vec![self.qualifier_use()?];
        loop {
            if self.eat(&Tok::RBracket) {
                return Ok(list);
            }
            if !self.eat(&Tok::Comma) {
                return Err(self.unexpected("',' or ']' in qualifier list"));
            }
            list.push(self.qualifier_use()?);
        }
    }

    fn qualifier_use(&mut self) -> Result<QualifierUse, SyntaxError> {
        let name = self.ident("a qualifier name")?;
        let value = match self.peek() {
            Tok::LParen => {
                self.advance();
                let v = self.value(false)?;
                self.expect(Tok::RParen, &format!("after the value of qualifier '{}'", name.name))?;
                Some(v)
            }
            Tok::LBrace => Some(self.value(false)?),
            _ => None,
        };
        let mut flavors = Vec::new();
        if self.eat(&Tok::Colon) {
            while matches!(self.peek(), Tok::Ident(s) if FLAVORS.iter().any(|f| f.eq_ignore_ascii_case(s))) {
                flavors.push(self.ident("a flavor")?);
            }
            if flavors.is_empty() {
                return Err(self.unexpected(&format!("a flavor after ':' in qualifier '{}'", name.name)));
            }
        }
        Ok(QualifierUse { name, value, flavors })
    }

    fn class(&mut self, qualifiers: Vec<QualifierUse>, pos: Pos) -> Result<ClassDecl, SyntaxError> {
        self.advance();
        let name = self.ident("a class name after 'class'")?;
        let alias = self.alias_opt()?;
        let superclass = if self.eat(&Tok::Colon) { Some(self.ident("a superclass name after ':'")?) } else { None };
        self.expect(Tok::LBrace, &format!("to open the body of class '{}'", name.name))?;
        let mut features = Vec::new();
        while !self.eat(&Tok::RBrace) {
            if self.peek() == &Tok::Eof {
                return Err(self.unexpected(&format!("'}}' to close class '{}'", name.name)));
            }
            features.push(self.feature()?);
        }
        self.expect(Tok::Semicolon, &format!("after the body of class '{}'", name.name))?;
        Ok(ClassDecl { qualifiers, name, alias, superclass, features, pos })
    }

    fn alias_opt(&mut self) -> Result<Option<Ident>, SyntaxError> {
        if !self.eat_keyword("as") {
            return Ok(None);
        }
        match self.peek().clone() {
            Tok::Alias(name) => {
                let pos = self.advance().pos;
                Ok(Some(Ident { name, pos }))
            }
            _ => Err(self.unexpected("an alias ('$Name') after 'as'")),
        }
    }

    /// An intrinsic type name, or `ClassName REF`.
    fn data_type(&mut self, what: &str) -> Result<DataType, SyntaxError> {
        let ty = self.ident(what)?;
        // `uint8 Ref;` declares a property named Ref: REF is the keyword only when a name follows.
        if matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case("ref")) && matches!(self.peek_nth(1), Tok::Ident(_)) {
            self.advance();
            return Ok(DataType::Ref(ty));
        }
        match PrimType::from_name(&ty.name) {
            Some(t) => Ok(DataType::Prim(t)),
            None => Err(SyntaxError::new(ty.pos, format!("unknown type name '{}'", ty.name))),
        }
    }

    fn array_spec(&mut self) -> Result<ArraySpec, SyntaxError> {
        if !self.eat(&Tok::LBracket) {
            return Ok(None);
        }
        let size = match self.peek().clone() {
            Tok::Integer(n) => {
                let pos = self.advance().pos;
                Some(u32::try_from(n).map_err(|_| SyntaxError::new(pos, format!("array size {n} is out of range")))?)
            }
            _ => None,
        };
        self.expect(Tok::RBracket, "to close the array size")?;
        Ok(Some(size))
    }

    fn feature(&mut self) -> Result<Feature, SyntaxError> {
        let qualifiers = self.qualifier_list_opt()?;
        let ty = self.data_type("a property or method declaration")?;
        let name = self.ident("a property or method name")?;
        if self.eat(&Tok::LParen) {
            let parameters = self.parameters(&name)?;
            self.expect(Tok::Semicolon, "after method declaration")?;
            return Ok(Feature::Method(MethodDecl { qualifiers, return_type: ty, name, parameters }));
        }
        let array = self.array_spec()?;
        let default = if self.eat(&Tok::Equals) { Some(self.value(matches!(ty, DataType::Ref(_)))?) } else { None };
        let what = if matches!(ty, DataType::Ref(_)) { "reference" } else { "property" };
        self.expect(Tok::Semicolon, &format!("after {what} declaration"))?;
        Ok(Feature::Property(PropertyDecl { qualifiers, ty, name, array, default }))
    }

    fn parameters(&mut self, method: &Ident) -> Result<Vec<ParameterDecl>, SyntaxError> {
        let mut params = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(params);
        }
        loop {
            let qualifiers = self.qualifier_list_opt()?;
            let ty = self.data_type("a parameter type")?;
            let name = self.ident("a parameter name")?;
            let array = self.array_spec()?;
            let default = if self.eat(&Tok::Equals) { Some(self.value(matches!(ty, DataType::Ref(_)))?) } else { None };
            params.push(ParameterDecl { qualifiers, ty, name, array, default });
            if self.eat(&Tok::RParen) {
                return Ok(params);
            }
            if !self.eat(&Tok::Comma) {
                return Err(self.unexpected(&format!("',' or ')' in the parameter list of method '{}'", method.name)));
            }
        }
    }

    fn instance(&mut self, qualifiers: Vec<QualifierUse>, pos: Pos) -> Result<InstanceDecl, SyntaxError> {
        self.advance();
        self.expect_keyword("of", "after 'instance'")?;
        let class_name = self.ident("a class name after 'instance of'")?;
        let alias = self.alias_opt()?;
        self.expect(Tok::LBrace, &format!("to open the body of the instance of '{}'", class_name.name))?;
        let mut properties = Vec::new();
        while !self.eat(&Tok::RBrace) {
            if self.peek() == &Tok::Eof {
                return Err(self.unexpected(&format!("'}}' to close the instance of '{}'", class_name.name)));
            }
            let qualifiers = self.qualifier_list_opt()?;
            let name = self.ident("a property name")?;
            self.expect(Tok::Equals, &format!("after property name '{}'", name.name))?;
            let value = self.value(true)?;
            self.expect(Tok::Semicolon, "after property value")?;
            properties.push(PropertyInit { qualifiers, name, value });
        }
        self.expect(Tok::Semicolon, &format!("after the instance of '{}'", class_name.name))?;
        Ok(InstanceDecl { qualifiers, class_name, alias, properties, pos })
    }

    /// A constant value or an array of them; aliases only where a reference may appear.
    fn value(&mut self, allow_alias: bool) -> Result<Value, SyntaxError> {
        let pos = self.pos();
        if self.eat(&Tok::LBrace) {
            let mut items = Vec::new();
            if self.eat(&Tok::RBrace) {
                return Ok(Value { kind: ValueKind::Array(items), pos });
            }
            loop {
                if self.peek() == &Tok::LBrace {
                    return Err(SyntaxError::new(self.pos(), "arrays cannot be nested"));
                }
                items.push(self.value(allow_alias)?);
                if self.eat(&Tok::RBrace) {
                    return Ok(Value { kind: ValueKind::Array(items), pos });
                }
                if !self.eat(&Tok::Comma) {
                    return Err(self.unexpected("',' or '}' in array value"));
                }
            }
        }
        let kind = match self.peek().clone() {
            Tok::Str(_) => ValueKind::String(self.strings()),
            Tok::Integer(n) => {
                self.advance();
                ValueKind::Integer(n)
            }
            Tok::Real(r) => {
                self.advance();
                ValueKind::Real(r)
            }
            Tok::Char16(c) => {
                self.advance();
                ValueKind::Char16(c)
            }
            Tok::Alias(a) if allow_alias => {
                self.advance();
                ValueKind::Alias(a)
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("true") => {
                self.advance();
                ValueKind::Boolean(true)
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("false") => {
                self.advance();
                ValueKind::Boolean(false)
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("null") => {
                self.advance();
                ValueKind::Null
            }
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Value { kind, pos })
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(src: &str) -> Production {
        let mut v = parse(src).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn err(src: &str) -> String {
        let e = parse(src).unwrap_err();
        format!("{}:{}: {}", e.pos.line, e.pos.col, e.message)
    }

    #[test]
    fn qualifier_declaration() {
        let Production::Qualifier(q) =
            parse_one("Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);")
        else {
            panic!()
        };
        assert_eq!(q.name.name, "Key");
        assert_eq!(q.ty, PrimType::Boolean);
        assert_eq!(q.default.unwrap().kind, ValueKind::Boolean(false));
        assert_eq!(q.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["property", "reference"]);
        assert_eq!(q.flavors.len(), 2);
        let Production::Qualifier(q) = parse_one("qualifier ValueMap : string[], scope(property, method, parameter);") else { panic!() };
        assert_eq!(q.array, Some(None));
        assert!(q.default.is_none() && q.flavors.is_empty());
    }

    #[test]
    fn class_with_everything() {
        let src = r#"
            [Association, Version ("2.22.0"), Description ("Line one "
               "and line two.")]
            class Xen_X as $XC : CIM_Y {
                [Key, Override ("Name"), MaxLen (256)] string Name;
                uint16 States[] = {2, 3};
                uint8 Fixed[4];
                real64 Ratio = -1.5;
                char16 Sep = ',';
                boolean Flag = TRUE;
                datetime When = NULL;
                [Key] CIM_ManagedElement REF Antecedent;
                [ValueMap {"0", "4096", ".."}, Values {"Ok", "Job", "Reserved"}: Translatable]
                uint32 RequestStateChange([In] uint16 RequestedState, [In (false), Out] CIM_ConcreteJob REF Job,
                                          [In, Out] string Names[], [Out] uint8 Buf[8]);
                sint64 NoArgs();
            };"#;
        let Production::Class(c) = parse_one(src) else { panic!() };
        assert_eq!(c.name.name, "Xen_X");
        assert_eq!(c.alias.as_ref().unwrap().name, "XC");
        assert_eq!(c.superclass.as_ref().unwrap().name, "CIM_Y");
        assert_eq!(c.pos, Pos::new(2, 13));
        let desc = &c.qualifiers[2];
        assert_eq!(desc.value.as_ref().unwrap().kind, ValueKind::String("Line one and line two.".into()));
        assert_eq!(c.features.len(), 10);
        let Feature::Property(name) = &c.features[0] else { panic!() };
        assert_eq!(name.qualifiers.len(), 3);
        assert_eq!(name.qualifiers[2].value.as_ref().unwrap().kind, ValueKind::Integer(256));
        let Feature::Property(states) = &c.features[1] else { panic!() };
        assert_eq!(states.array, Some(None));
        let Some(Value { kind: ValueKind::Array(items), .. }) = &states.default else { panic!() };
        assert_eq!(items.len(), 2);
        let Feature::Property(fixed) = &c.features[2] else { panic!() };
        assert_eq!(fixed.array, Some(Some(4)));
        let Feature::Property(sep) = &c.features[4] else { panic!() };
        assert_eq!(sep.default.as_ref().unwrap().kind, ValueKind::Char16(','));
        let Feature::Property(when) = &c.features[6] else { panic!() };
        assert_eq!(when.ty, DataType::Prim(PrimType::DateTime));
        assert_eq!(when.default.as_ref().unwrap().kind, ValueKind::Null);
        let Feature::Property(r) = &c.features[7] else { panic!() };
        assert!(matches!(&r.ty, DataType::Ref(i) if i.name == "CIM_ManagedElement"));
        let Feature::Method(m) = &c.features[8] else { panic!() };
        assert_eq!(m.name.name, "RequestStateChange");
        assert_eq!(m.return_type, DataType::Prim(PrimType::UInt32));
        assert_eq!(m.qualifiers[1].flavors[0].name, "Translatable");
        assert_eq!(m.parameters.len(), 4);
        assert!(matches!(&m.parameters[1].ty, DataType::Ref(i) if i.name == "CIM_ConcreteJob"));
        assert_eq!(m.parameters[1].qualifiers[0].value.as_ref().unwrap().kind, ValueKind::Boolean(false));
        assert_eq!(m.parameters[2].array, Some(None));
        assert_eq!(m.parameters[3].array, Some(Some(8)));
        let Feature::Method(m) = &c.features[9] else { panic!() };
        assert!(m.parameters.is_empty());
    }

    #[test]
    fn instances_with_aliases_and_paths() {
        let src = r#"
            instance of Xen_HostSystem as $Host { CreationClassName = "Xen_HostSystem"; Name = "h"; };
            [Description("x")]
            instance of Xen_HostedService {
                Antecedent = $Host;
                Dependent = "root/virt:Xen_VirtualSystemManagementService.Name=\"vsms\"";
                Values = {1, 2, NULL};
                Refs = {$Host};
            };"#;
        let v = parse(src).unwrap();
        let Production::Instance(a) = &v[0] else { panic!() };
        assert_eq!(a.alias.as_ref().unwrap().name, "Host");
        assert_eq!(a.properties.len(), 2);
        let Production::Instance(b) = &v[1] else { panic!() };
        assert_eq!(b.qualifiers.len(), 1);
        assert_eq!(b.properties[0].value.kind, ValueKind::Alias("Host".into()));
        assert!(matches!(&b.properties[1].value.kind, ValueKind::String(s) if s.contains("Name=\"vsms\"")));
        assert!(matches!(&b.properties[2].value.kind, ValueKind::Array(a) if a[2].kind == ValueKind::Null));
        assert_eq!(parse_instances(src).unwrap().len(), 2);
        assert_eq!(parse_instances("class X {};").unwrap_err().message, "expected 'instance of', found 'class'");
    }

    #[test]
    fn pragmas() {
        let v = parse("#pragma include (\"a/\" \"b.mof\")\n#pragma namespace(\"root/virt\")\n#pragma locale (\"en_US\")").unwrap();
        assert_eq!(v.len(), 3);
        let Production::Pragma(p) = &v[0] else { panic!() };
        assert_eq!((p.name.name.as_str(), p.value.as_str(), p.pos, p.value_pos), ("include", "a/b.mof", Pos::new(1, 1), Pos::new(1, 18)));
        assert_eq!(err("#pragma include (x)"), "1:18: expected a string parameter of the pragma, found 'x'");
        assert_eq!(err("#pragma include \"x\""), "1:17: expected '(' after '#pragma include', found string \"x\"");
    }

    #[test]
    fn syntax_errors_say_what_was_expected_where() {
        let cases = [
            ("class A {\n    string Name\n};", "3:1: expected ';' after property declaration, found '}'"),
            ("class A {\n  A REF r = $x\n}", "3:1: expected ';' after reference declaration, found '}'"),
            ("class A {\n  uint8 Ref;\n  A REF Ref x;\n};", "3:13: expected ';' after reference declaration, found 'x'"),
            (
                "class A {\n    uint32 M(uint8 a uint8 b);\n};",
                "2:22: expected ',' or ')' in the parameter list of method 'M', found 'uint8'",
            ),
            ("class A {\n    uint32 M();\n}", "3:2: expected ';' after the body of class 'A', found end of file"),
            ("class A {\n    uint32 M()\n};", "3:1: expected ';' after method declaration, found '}'"),
            ("class A {\n    uint128 Big;\n};", "2:5: unknown type name 'uint128'"),
            ("class A {\n    string Name;\n", "3:1: expected '}' to close class 'A', found end of file"),
            ("class {};", "1:7: expected a class name after 'class', found '{'"),
            ("class A : {};", "1:11: expected a superclass name after ':', found '{'"),
            ("class A B {};", "1:9: expected '{' to open the body of class 'A', found 'B'"),
            ("[Key string X;", "1:6: expected ',' or ']' in qualifier list, found 'string'"),
            ("[Key] string X;", "1:7: expected 'class' or 'instance' after qualifier list, found 'string'"),
            ("klass A {};", "1:1: expected 'class', 'instance', 'qualifier' or '#pragma', found 'klass'"),
            ("[A(1]", "1:5: expected ')' after the value of qualifier 'A', found ']'"),
            ("[A: Foo] class X {};", "1:5: expected a flavor after ':' in qualifier 'A', found 'Foo'"),
            ("class A { uint8 X = {1, {2}}; };", "1:25: arrays cannot be nested"),
            ("class A { uint8 X = ; };", "1:21: expected a value, found ';'"),
            ("class A { uint8 X = $a; };", "1:21: expected a value, found alias '$a'"),
            ("class A { uint8 X[n]; };", "1:19: expected ']' to close the array size, found 'n'"),
            ("instance A {};", "1:10: expected 'of' after 'instance', found 'A'"),
            ("instance of A { X = 1 };", "1:23: expected ';' after property value, found '}'"),
            ("instance of A { X 1; };", "1:19: expected '=' after property name 'X', found integer 1"),
            ("instance of A as B {};", "1:18: expected an alias ('$Name') after 'as', found 'B'"),
            ("qualifier Q : boolean;", "1:22: expected ',' before 'Scope' in qualifier declaration, found ';'"),
            ("qualifier Q : boolean, Scopes(any);", "1:24: expected 'Scope' in qualifier declaration, found 'Scopes'"),
            ("qualifier Q : X REF, Scope(any);", "1:15: unknown type name 'X' (qualifiers have intrinsic types)"),
            ("qualifier Q : string, Scope(any), Flavor(Restricted)", "1:53: expected ';' after qualifier declaration, found end of file"),
        ];
        for (src, want) in cases {
            assert_eq!(err(src), want, "{src}");
        }
    }

    #[test]
    fn keywords_are_case_insensitive_and_usable_as_names() {
        let src = "[ASSOCIATION] CLASS A : B { [In] Class REF Reference; [KEY] STRING Instance; Uint32 Of(Real32 Qualifier); };";
        let Production::Class(c) = parse_one(src) else { panic!() };
        assert_eq!(c.features.len(), 3);
        let Feature::Property(r) = &c.features[0] else { panic!() };
        assert_eq!(r.name.name, "Reference");
        let Feature::Method(m) = &c.features[2] else { panic!() };
        assert_eq!(m.parameters[0].ty, DataType::Prim(PrimType::Real32));
    }
}
