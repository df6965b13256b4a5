//! The syntax tree of one MOF text, with positions. It knows nothing of the CIM object model:
//! types and values stay as written until the compiler gives them meaning.

use super::diag::Pos;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub pos: Pos,
}

impl Ident {
    /// MOF keywords are case-insensitive.
    pub fn is(&self, keyword: &str) -> bool {
        self.name.eq_ignore_ascii_case(keyword)
    }
}

/// The intrinsic data types (DSP0004 `DT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimType {
    Boolean,
    String,
    Char16,
    UInt8,
    SInt8,
    UInt16,
    SInt16,
    UInt32,
    SInt32,
    UInt64,
    SInt64,
    Real32,
    Real64,
    DateTime,
}

impl PrimType {
    const ALL: [PrimType; 14] = [
        PrimType::Boolean,
        PrimType::String,
        PrimType::Char16,
        PrimType::UInt8,
        PrimType::SInt8,
        PrimType::UInt16,
        PrimType::SInt16,
        PrimType::UInt32,
        PrimType::SInt32,
        PrimType::UInt64,
        PrimType::SInt64,
        PrimType::Real32,
        PrimType::Real64,
        PrimType::DateTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PrimType::Boolean => "boolean",
            PrimType::String => "string",
            PrimType::Char16 => "char16",
            PrimType::UInt8 => "uint8",
            PrimType::SInt8 => "sint8",
            PrimType::UInt16 => "uint16",
            PrimType::SInt16 => "sint16",
            PrimType::UInt32 => "uint32",
            PrimType::SInt32 => "sint32",
            PrimType::UInt64 => "uint64",
            PrimType::SInt64 => "sint64",
            PrimType::Real32 => "real32",
            PrimType::Real64 => "real64",
            PrimType::DateTime => "datetime",
        }
    }

    pub fn from_name(name: &str) -> Option<PrimType> {
        PrimType::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

/// The type of a property, parameter or method: intrinsic, or `ClassName REF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataType {
    Prim(PrimType),
    Ref(Ident),
}

/// `[]` is `Some(None)`, `[5]` is `Some(Some(5))`, no brackets is `None`.
pub type ArraySpec = Option<Option<u32>>;

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Null,
    Boolean(bool),
    Integer(i128),
    Real(f64),
    /// Adjacent literals already joined.
    String(String),
    Char16(char),
    /// `$Name`: the path of an instance declared earlier with `as $Name`.
    Alias(String),
    /// `{ ... }`; MOF has no nested arrays, the parser refuses them.
    Array(Vec<Value>),
}

/// A qualifier applied to an element: `Name`, `Name(value)`, `Name{...}`, optionally `: Flavor...`.
#[derive(Debug, Clone, PartialEq)]
pub struct QualifierUse {
    pub name: Ident,
    pub value: Option<Value>,
    pub flavors: Vec<Ident>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualifierDeclaration {
    pub name: Ident,
    pub ty: PrimType,
    pub ty_pos: Pos,
    pub array: ArraySpec,
    pub default: Option<Value>,
    pub scopes: Vec<Ident>,
    pub flavors: Vec<Ident>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDecl {
    pub qualifiers: Vec<QualifierUse>,
    pub ty: DataType,
    pub name: Ident,
    pub array: ArraySpec,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDecl {
    pub qualifiers: Vec<QualifierUse>,
    pub ty: DataType,
    pub name: Ident,
    pub array: ArraySpec,
    /// DSP0004 3.0 default values of parameters; kept only so that such schemas parse.
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MethodDecl {
    pub qualifiers: Vec<QualifierUse>,
    pub return_type: DataType,
    pub name: Ident,
    pub parameters: Vec<ParameterDecl>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    Property(PropertyDecl),
    Method(MethodDecl),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassDecl {
    pub qualifiers: Vec<QualifierUse>,
    pub name: Ident,
    /// DSP0004 2.x allows `class X as $A`; the alias names the class path.
    pub alias: Option<Ident>,
    pub superclass: Option<Ident>,
    pub features: Vec<Feature>,
    /// Where the declaration starts (its qualifier list or the `class` keyword).
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropertyInit {
    pub qualifiers: Vec<QualifierUse>,
    pub name: Ident,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceDecl {
    pub qualifiers: Vec<QualifierUse>,
    pub class_name: Ident,
    pub alias: Option<Ident>,
    pub properties: Vec<PropertyInit>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pragma {
    pub name: Ident,
    pub value: String,
    pub value_pos: Pos,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Production {
    Pragma(Pragma),
    Qualifier(QualifierDeclaration),
    Class(ClassDecl),
    Instance(InstanceDecl),
}
