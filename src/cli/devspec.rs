//! Device specifications as xm and xl write them: disks (`file:/img,xvda,w`, `phy:/dev/sdb,xvdb,r`,
//! `tap:aio:/img,xvdc,w`, or xl's `vdev=xvda, access=rw, target=/img`) and network interfaces
//! (`mac=00:16:3e:..., bridge=xenbr0`). They appear in config files and on the command line of
//! `block-attach` and `network-attach`, so they parse to plain values with string errors that
//! the caller places.

/// Where a disk's data comes from, as the spec's prefix said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `file:`, `tap:aio:`, a format prefix, or no prefix: an image file.
    File,
    /// `phy:`: a block device of the host.
    Phy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// The path on the daemon's host; `None` only for an empty CD drive.
    pub target: Option<String>,
    pub backend: Backend,
    pub vdev: String,
    /// The slot number that vdev names (xvda, hda and sda are 0).
    pub index: u32,
    pub read_only: bool,
    pub cdrom: bool,
    /// Bytes for a disk to create when the target does not exist yet.
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VifSpec {
    pub mac: Option<String>,
    pub bridge: Option<String>,
    pub mtu: Option<u32>,
}

/// A parsed spec and the things in it that were accepted but have no effect here.
pub type Parsed<T> = (T, Vec<String>);

/// The slot number of a virtual device name: `xvda`..`xvdz`, `xvdaa`.., `hda`.., `sda`.., or a
/// plain number (Xen-API's userdevice).
pub fn vdev_index(vdev: &str) -> Option<u32> {
    if !vdev.is_empty() && vdev.chars().all(|c| c.is_ascii_digit()) {
        return vdev.parse().ok().filter(|n| *n < 256);
    }
    let letters = ["xvd", "hd", "sd"].iter().find_map(|p| vdev.strip_prefix(p))?;
    if letters.is_empty() || letters.len() > 2 || !letters.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let b = letters.as_bytes();
    let n = if b.len() == 1 { u32::from(b[0] - b'a') } else { (u32::from(b[0] - b'a') + 1) * 26 + u32::from(b[1] - b'a') };
    Some(n)
}

/// A size such as `10G`, `512M`, `1.5T` or `2048` (MiB, like `memory`). Suffixes are binary:
/// K, M, G, T (also KiB, MB, GiB...); `B` means bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("expected a size such as 10G or 512M, found '{text}'"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 0,
        "k" | "kb" | "kib" => 10,
        "" | "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown size unit '{other}' in '{text}' (use K, M, G or T)")),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64 / 2.0) {
        return Err(format!("the size '{text}' is out of range"));
    }
    Ok(bytes as u64)
}

fn parse_access(a: &str, warnings: &mut Vec<String>) -> Result<bool, String> {
    match a {
        "r" | "ro" => Ok(true),
        "w" | "rw" => Ok(false),
        "w!" | "!" => {
            warnings.push("access 'w!' (shared writable) is treated as 'w'".into());
            Ok(false)
        }
        other => Err(format!("expected an access mode (r, ro, w, rw), found '{other}'")),
    }
}

/// Prefixes of the deprecated xm form, where the target carries its backend and format and the
/// positional parameters are target, vdev, access.
const LEGACY_PREFIXES: &[&str] = &["file:", "phy:", "tap:", "tap2:", "aio:", "raw:", "qcow:", "qcow2:", "vhd:", "qed:"];

/// Disk parameters of xl that change nothing for this daemon.
const IGNORED_DISK_KEYS: &[&str] = &["backendtype", "backend", "script", "specification", "colo-host", "colo-port", "colo-export"];
const IGNORED_DISK_FLAGS: &[&str] = &["discard", "no-discard", "direct-io-safe", "trusted", "untrusted", "colo"];

fn has_legacy_prefix(t: &str) -> bool {
    LEGACY_PREFIXES.iter().any(|p| t.starts_with(p))
}

/// Strips the backend/format prefixes from a target and says what they meant.
fn strip_target(raw: &str, warnings: &mut Vec<String>) -> Result<(Backend, String), String> {
    let mut t = raw.trim();
    let mut backend = Backend::File;
    while let Some((prefix, rest)) = t.split_once(':') {
        // A path or device never has a colon before its first slash; a prefix always does.
        if prefix.contains('/') {
            break;
        }
        match prefix {
            "file" | "tap" | "tap2" | "tapdisk" | "aio" | "sync" | "raw" => {}
            "phy" => backend = Backend::Phy,
            "qcow" | "qcow2" | "vhd" | "qed" => warnings.push(format!("image format '{prefix}' is used as a raw image")),
            other => return Err(format!("unknown disk prefix '{other}:' (expected file:, phy: or tap:aio:)")),
        }
        t = rest;
    }
    if t.is_empty() {
        return Err(format!("expected a path after '{raw}'"));
    }
    let path = if backend == Backend::Phy && !t.starts_with('/') { format!("/dev/{t}") } else { t.to_owned() };
    if !path.starts_with('/') {
        return Err(format!("the disk target '{path}' must be an absolute path (the daemon opens it on its own host)"));
    }
    Ok((backend, path))
}

fn looks_like_vdev(p: &str) -> bool {
    let p = p.strip_prefix("ioemu:").unwrap_or(p);
    vdev_index(p.split_once(':').map_or(p, |(name, _)| name)).is_some() && !p.chars().all(|c| c.is_ascii_digit())
}

fn set_once(slot: &mut Option<String>, name: &str, value: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("the disk parameter '{name}' is given twice"));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

/// Parses one disk spec in the xm or xl syntax.
pub fn parse_disk(spec: &str) -> Result<Parsed<DiskSpec>, String> {
    let mut warnings = Vec::new();
    let (mut target, mut format, mut vdev, mut access, mut devtype, mut size) = (None, None, None, None, None, None);
    let mut cdrom_flag = false;
    let mut positional: Vec<String> = Vec::new();
    let mut rest = spec;
    let mut first = true;
    while !rest.is_empty() || first {
        let (token, tail) = rest.split_once(',').unwrap_or((rest, ""));
        let token = token.trim();
        if let Some(value) = token.strip_prefix("target=") {
            // xl: `target=` takes the rest of the spec, commas included. xm users write
            // `target=file:/img,xvda,w` first with the other parameters after it.
            if first && has_legacy_prefix(value) {
                positional.push(value.to_owned());
            } else {
                let whole = rest.trim_start().strip_prefix("target=").unwrap_or(value);
                set_once(&mut target, "target", whole.trim())?;
                break;
            }
        } else if let Some((key, value)) = token.split_once('=') {
            let (key, value) = (key.trim(), value.trim());
            match key {
                "vdev" => set_once(&mut vdev, key, value)?,
                "access" => set_once(&mut access, key, value)?,
                "format" => set_once(&mut format, key, value)?,
                "devtype" => set_once(&mut devtype, key, value)?,
                "size" => set_once(&mut size, key, value)?,
                k if IGNORED_DISK_KEYS.contains(&k) => warnings.push(format!("disk parameter '{k}' is ignored")),
                k => return Err(format!("unknown disk parameter '{k}' (expected vdev, access, format, devtype, size or target)")),
            }
        } else if token == "cdrom" {
            cdrom_flag = true;
        } else if IGNORED_DISK_FLAGS.contains(&token) {
            warnings.push(format!("disk flag '{token}' is ignored"));
        } else {
            positional.push(token.to_owned());
        }
        first = false;
        rest = tail;
        if tail.is_empty() {
            break;
        }
    }

    // Positional parameters fill the slots not named: xl's order is target, format, vdev,
    // access; the xm form (a prefixed target) has no format slot.
    // xm's empty CD drive (`,hdc:cdrom,r`) has no prefix to tell, but its second parameter is
    // a device name where xl would have a format.
    let legacy = positional.first().is_some_and(|t| has_legacy_prefix(t))
        || target.as_deref().is_some_and(has_legacy_prefix)
        || positional.get(1).is_some_and(|p| looks_like_vdev(p));
    let order: &[&str] = if legacy { &["target", "vdev", "access"] } else { &["target", "format", "vdev", "access"] };
    let mut slots = order.iter();
    for value in positional {
        let slot = loop {
            match slots.next() {
                Some(&"target") if target.is_some() => continue,
                Some(&"format") if format.is_some() => continue,
                Some(&"vdev") if vdev.is_some() => continue,
                Some(&"access") if access.is_some() => continue,
                Some(s) => break *s,
                None => return Err(format!("too many parameters: '{value}' has no place (target, vdev, access)")),
            }
        };
        if value.is_empty() {
            continue;
        }
        match slot {
            "target" => target = Some(value),
            "format" => format = Some(value),
            "vdev" => vdev = Some(value),
            _ => access = Some(value),
        }
    }

    let mut vdev = vdev.ok_or_else(|| "expected a virtual device such as xvda (vdev)".to_owned())?;
    if let Some(v) = vdev.strip_prefix("ioemu:") {
        vdev = v.to_owned();
    }
    let mut cdrom = cdrom_flag;
    if let Some((name, kind)) = vdev.clone().split_once(':') {
        match kind {
            "cdrom" => cdrom = true,
            "disk" => {}
            other => return Err(format!("unknown device type ':{other}' after '{name}' (expected :cdrom or :disk)")),
        }
        vdev = name.to_owned();
    }
    match devtype.as_deref() {
        None | Some("disk") => {}
        Some("cdrom") => cdrom = true,
        Some(other) => return Err(format!("unknown devtype '{other}' (expected disk or cdrom)")),
    }
    let index = vdev_index(&vdev).ok_or_else(|| format!("'{vdev}' is not a virtual device name (expected xvda, hdc, sdb...)"))?;
    match format.as_deref() {
        None | Some("raw") => {}
        Some("empty") => target = None,
        Some(f @ ("qcow" | "qcow2" | "vhd" | "qed")) => warnings.push(format!("image format '{f}' is used as a raw image")),
        Some(other) => return Err(format!("unknown image format '{other}' (expected raw)")),
    }
    let read_only = match access.as_deref() {
        Some(a) => parse_access(a, &mut warnings)?,
        None => cdrom,
    };
    let (backend, target) = match target.as_deref().map(str::trim) {
        None | Some("") if cdrom => (Backend::File, None),
        None | Some("") => return Err("expected a target: the image file or device (file:/path)".into()),
        Some(t) => {
            let (b, path) = strip_target(t, &mut warnings)?;
            (b, Some(path))
        }
    };
    let size = size.map(|s| parse_size(&s)).transpose()?;
    if size.is_some() && (backend == Backend::Phy || cdrom) {
        return Err("size= makes a new image file; it does not apply to phy: devices or CD drives".into());
    }
    Ok((DiskSpec { target, backend, vdev, index, read_only, cdrom, size }, warnings))
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// vif parameters of xm/xl that change nothing for this daemon.
const IGNORED_VIF_KEYS: &[&str] =
    &["ip", "script", "vifname", "model", "type", "rate", "backend", "gatewaydev", "accel", "devid", "forwarddev", "trusted"];

/// Parses one vif spec: comma-separated `key=value` pairs; the empty spec means defaults.
pub fn parse_vif(spec: &str) -> Result<Parsed<VifSpec>, String> {
    let mut vif = VifSpec::default();
    let mut warnings = Vec::new();
    for token in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let Some((key, value)) = token.split_once('=') else {
            return Err(format!("expected key=value (mac=..., bridge=...), found '{token}'"));
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "mac" => {
                if !valid_mac(value) {
                    return Err(format!("'{value}' is not a MAC address (expected six hex pairs such as 00:16:3e:12:34:56)"));
                }
                vif.mac = Some(value.to_ascii_lowercase());
            }
            "bridge" => {
                if value.is_empty() {
                    return Err("expected a bridge name after 'bridge='".into());
                }
                vif.bridge = Some(value.to_owned());
            }
            "mtu" => {
                vif.mtu = Some(value.parse().ok().filter(|m| (68..=65535).contains(m)).ok_or_else(|| format!("'{value}' is not an MTU"))?)
            }
            k if IGNORED_VIF_KEYS.contains(&k) => warnings.push(format!("vif parameter '{k}' is ignored")),
            k => return Err(format!("unknown vif parameter '{k}' (expected mac, bridge or mtu)")),
        }
    }
    Ok((vif, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(spec: &str) -> DiskSpec {
        parse_disk(spec).unwrap_or_else(|e| panic!("{spec}: {e}")).0
    }

    #[test]
    fn device_names_map_to_slots() {
        for (name, n) in [("xvda", Some(0)), ("xvdb", Some(1)), ("hdc", Some(2)), ("sdz", Some(25)), ("xvdaa", Some(26)), ("3", Some(3))] {
            assert_eq!(vdev_index(name), n, "{name}");
        }
        for bad in ["", "xvd", "xvdA", "vda", "xvda1", "xvdabc", "999"] {
            assert_eq!(vdev_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512"), Ok(512 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10X").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn the_forms_of_one_disk_agree() {
        let expected = DiskSpec {
            target: Some("/srv/vm1.img".into()),
            backend: Backend::File,
            vdev: "xvda".into(),
            index: 0,
            read_only: false,
            cdrom: false,
            size: None,
        };
        for spec in [
            "file:/srv/vm1.img,xvda,w",
            "target=file:/srv/vm1.img,xvda,w",
            "tap:aio:/srv/vm1.img,xvda,w",
            "tap2:tapdisk:aio:/srv/vm1.img,xvda,w",
            "/srv/vm1.img,,xvda",
            "/srv/vm1.img,raw,xvda,rw",
            "vdev=xvda, access=rw, target=/srv/vm1.img",
            "format=raw, vdev=xvda, access=w, target=/srv/vm1.img",
            "raw:/srv/vm1.img,xvda,w",
        ] {
            assert_eq!(disk(spec), expected, "{spec}");
        }
    }

    #[test]
    fn devices_cdroms_and_sizes() {
        let phy = disk("phy:/dev/vg0/data,xvdb,r");
        assert_eq!((phy.backend, phy.target.as_deref(), phy.index, phy.read_only), (Backend::Phy, Some("/dev/vg0/data"), 1, true));
        assert_eq!(disk("phy:sdb,hdb,w").target.as_deref(), Some("/dev/sdb"));
        let cd = disk("file:/iso/debian.iso,hdc:cdrom,r");
        assert!(cd.cdrom && cd.read_only && cd.index == 2);
        let cd = disk("/iso/debian.iso,,hdc,cdrom");
        assert!(cd.cdrom && cd.read_only);
        let empty = disk(",hdc:cdrom,r");
        assert_eq!((empty.target, empty.cdrom), (None, true));
        let new = disk("vdev=xvdc, size=10G, target=/srv/new disk,with comma.img");
        assert_eq!(new.target.as_deref(), Some("/srv/new disk,with comma.img"));
        assert_eq!(new.size, Some(10 << 30));
        let (_, warnings) = parse_disk("qcow2:/srv/a.qcow2,xvda,w").unwrap();
        assert_eq!(warnings, vec!["image format 'qcow2' is used as a raw image".to_owned()]);
        let (_, warnings) = parse_disk("file:/a,xvda,w,discard").unwrap();
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn bad_disks_say_what_was_expected() {
        for (spec, fragment) in [
            ("file:/a.img", "expected a virtual device"),
            ("file:/a.img,vda,w", "'vda' is not a virtual device name"),
            ("file:/a.img,xvda,x", "expected an access mode"),
            ("file:a.img,xvda,w", "must be an absolute path"),
            ("nbd:host:1,xvda,w", "unknown disk prefix 'nbd:'"),
            (",xvda,w", "expected a target"),
            ("file:/a,xvda,w,extra", "too many parameters"),
            ("vdev=xvda, vdev=xvdb, target=/a", "given twice"),
            ("colour=red, vdev=xvda, target=/a", "unknown disk parameter 'colour'"),
            ("phy:/dev/sdb,xvda,w,size=1G", "does not apply to phy:"),
            ("file:/a,xvda:floppy,w", "unknown device type"),
        ] {
            let err = parse_disk(spec).unwrap_err();
            assert!(err.contains(fragment), "{spec}: {err}");
        }
    }

    #[test]
    fn vifs() {
        let (v, w) = parse_vif("mac=00:16:3E:01:02:03, bridge=xenbr1").unwrap();
        assert_eq!(v, VifSpec { mac: Some("00:16:3e:01:02:03".into()), bridge: Some("xenbr1".into()), mtu: None });
        assert!(w.is_empty());
        assert_eq!(parse_vif("").unwrap().0, VifSpec::default());
        let (v, w) = parse_vif("bridge=xenbr0,script=vif-bridge,mtu=9000").unwrap();
        assert_eq!((v.bridge.as_deref(), v.mtu, w.len()), (Some("xenbr0"), Some(9000), 1));
        assert!(parse_vif("mac=00:16:3e:01:02").unwrap_err().contains("not a MAC"));
        assert!(parse_vif("xenbr0").unwrap_err().contains("expected key=value"));
        assert!(parse_vif("colour=red").unwrap_err().contains("unknown vif parameter"));
    }
}
