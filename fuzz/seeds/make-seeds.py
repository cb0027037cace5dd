#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ from the repository's test keys and the protocol's samples.

Needs Python `cryptography`. Run from the repository root: python3 fuzz/seeds/make-seeds.py
The seeds are committed; rerun only to change them.
"""
import base64
import hashlib
import json
import pathlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "crates/shared/testdata"
SEEDS = ROOT / "fuzz/seeds"
NOW = 1_800_000_000  # superoffice_fuzz::NOW
CLAIM = "http://schemes.superoffice.net/identity/"


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def xml_key(path):
    text = path.read_text(encoding="utf-8-sig")
    number = lambda tag: int.from_bytes(
        base64.b64decode(re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S).group(1)), "big")
    n, e, d, p, q = (number(t) for t in ["Modulus", "Exponent", "D", "P", "Q"])
    public = rsa.RSAPublicNumbers(e, n)
    private = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public)
    return private.private_key()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


key = xml_key(TESTDATA / "localhost-private-key.xml")
cert = x509.load_pem_x509_certificate((TESTDATA / "test-federated-login.pem").read_bytes())
thumb = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()
header = {"alg": "RS256", "typ": "JWT", "kid": thumb.hex().upper(), "x5t": b64url(thumb)}


def sign(message):
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def jwt(claims, head=header):
    signed = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signed}.{b64url(sign(signed.encode()))}"


# partner_key: the sample keys, the same key as PEM, a messy but valid XML, and hostile documents.
for path in sorted(TESTDATA.glob("*.xml")):
    write("partner_key", path.name, path.read_bytes())
write("partner_key", "pkcs1.pem", key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
write("partner_key", "pkcs8.pem", key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
plain = (TESTDATA / "service-console-key.xml").read_text(encoding="utf-8-sig")
write("partner_key", "messy.xml", "\ufeff<?xml version=\"1.0\"?>\r\n<!-- key -->\r\n"
      + plain.replace("<", "<k:").replace("<k:/", "</k:")
      .replace("<k:RSAKeyValue>", "<k:RSAKeyValue xmlns:k=\"urn:k\">"))
write("partner_key", "billion-laughs.xml",
      '<?xml version="1.0"?><!DOCTYPE RSAKeyValue [<!ENTITY a "AAAA"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
      '<!ENTITY c "&b;&b;&b;&b;&b;&b;">]><RSAKeyValue><Modulus>&c;</Modulus></RSAKeyValue>')

# jwt_token and jwt_claims: one token and one payload of each kind, valid at NOW.
times = {"iat": NOW, "nbf": NOW - 60, "exp": NOW + 300}
payloads = {
    "id_token": {"sub": "tony@superoffice.com", CLAIM + "ctx": "Cust12345", CLAIM + "serial": "1801550193",
                 CLAIM + "is_administrator": "True", CLAIM + "associateid": "5",
                 CLAIM + "system_token": "Partner App-8k8Q7DmBgo",
                 CLAIM + "webapi_url": "https://sod.superoffice.com/Cust12345/api/", "nonce": "nonce-1",
                 **times, "iss": "https://sod.superoffice.com", "aud": "6cf25376616343b38d14ddcd804f2891"},
    "system_user": {CLAIM + "ctx": "Cust12345", CLAIM + "serial": "1801550193",
                    CLAIM + "ticket": "7T:MAA3AGYAMQBl",
                    CLAIM + "netserver_url": "https://sod2.superoffice.com/Cust12345/Remote/Services88/",
                    **times, "iss": "SuperOffice AS", "aud": "spn:1801550193"},
    "legacy": {CLAIM + "ctx": "Cust12345", CLAIM + "ticket": "7T:MAA3AGYAMQBl", "iat": str(NOW),
               "exp": NOW + 300, "iss": "SuperOffice AS"},
    "state_change": {CLAIM + "ctx": "Cust12345", **times, "iss": "SuperOffice AS",
                     "aud": ["spn:6cf25376616343b38d14ddcd804f2891"]},
}
for name, claims in payloads.items():
    write("jwt_claims", name + ".json", json.dumps(claims, indent=1))
    write("jwt_token", name + ".jwt", jwt(claims))
none_header = b64url(json.dumps({"alg": "none"}).encode())
write("jwt_token", "alg-none.jwt", f"{none_header}.{b64url(json.dumps(payloads['legacy']).encode())}.")
write("jwt_token", "no-kid.jwt", jwt(payloads["legacy"], {"alg": "RS256"}))

# signed_token: system user tokens signed at NOW's minute, one with dots and spaces in the token.
for name, token in [("plain", "SuperOffice DevNet Node OIDC-8k8Q7DmBgo"), ("dots", "My App v1.2 (beta).x-pzqc70604i")]:
    signed = f"{token}.202701150800"
    write("signed_token", name + ".txt", f"{signed}.{base64.b64encode(sign(signed.encode())).decode()}")

# sim_soap_request: the published envelope (protocol §5.1) with the signed token in it.
signed = (SEEDS / "signed_token/plain.txt").read_text()
published = f"""<?xml version="1.0" encoding="UTF-8"?>
  <SOAP-ENV:Envelope xmlns:ns0="http://schemas.xmlsoap.org/soap/envelope/"
                     xmlns:ns1="http://www.superoffice.com/superid/partnersystemuser/0.1"
                     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                     xmlns:tns="http://www.superoffice.com/superid/partnersystemuser/0.1"
                     xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
    <SOAP-ENV:Header>
      <tns:ApplicationToken>app-token</tns:ApplicationToken>
      <tns:ContextIdentifier>Cust12345</tns:ContextIdentifier>
    </SOAP-ENV:Header>
    <ns0:Body>
      <ns1:AuthenticationRequest>
        <ns1:SignedSystemToken>{signed}</ns1:SignedSystemToken>
        <ns1:ReturnTokenType>Jwt</ns1:ReturnTokenType>
      </ns1:AuthenticationRequest>
    </ns0:Body>
  </SOAP-ENV:Envelope>"""
write("sim_soap_request", "published.xml", published)
write("sim_soap_request", "contact.xml", """<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Header><ApplicationToken xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88">app</ApplicationToken>
<Credentials xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88"><Ticket>7T:abc</Ticket></Credentials></s:Header>
<s:Body><SaveContactEntity xmlns="http://www.superoffice.net/ws/crm/NetServer/Services88"><ContactEntity>
<ContactId>0</ContactId><Name>A &amp; B &#65;</Name><![CDATA[x<y]]></ContactEntity></SaveContactEntity></s:Body></s:Envelope>""")

# soap_response: an AuthenticationResponse (success and nil), SOAP 1.1 and 1.2 faults, a NetServer entity.
ns = "http://www.superoffice.com/superid/partnersystemuser/0.1"
xsi = "http://www.w3.org/2001/XMLSchema-instance"
env = lambda header, body: (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                            f'{header}<s:Body>{body}</s:Body></s:Envelope>')
write("soap_response", "success.xml", env("", f'<AuthenticationResponse xmlns="{ns}" xmlns:i="{xsi}">'
      f'<IsSuccessful>true</IsSuccessful><Token>{jwt(payloads["system_user"])}</Token>'
      f'<ErrorMessage i:nil="true"/></AuthenticationResponse>'))
write("soap_response", "refused.xml", env("", f'<AuthenticationResponse xmlns="{ns}" xmlns:i="{xsi}">'
      f'<IsSuccessful>false</IsSuccessful><Token i:nil="true"/>'
      f'<ErrorMessage>InvalidTimestamp: The supplied timestamp is invalid</ErrorMessage></AuthenticationResponse>'))
write("soap_response", "fault11.xml", env("", '<s:Fault><faultcode>s:Client</faultcode>'
      '<faultstring xml:lang="en-US">The message with Action &apos;x&apos; cannot be processed</faultstring></s:Fault>'))
write("soap_response", "fault12.xml", '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault>'
      '<e:Code><e:Value>e:Sender</e:Value></e:Code><e:Reason><e:Text xml:lang="en">no</e:Text></e:Reason>'
      '</e:Fault></e:Body></e:Envelope>')
services = "http://www.superoffice.net/ws/crm/NetServer/Services88"
write("soap_response", "contact.xml", env(
    f'<ExceptionInfo xmlns="{services}" xmlns:i="{xsi}" i:nil="true"/><Succeeded xmlns="{services}">true</Succeeded>',
    f'<CreateDefaultContactEntityResponse xmlns="{services}"><Response><ContactId>0</ContactId><Name/>'
    f'<Department>R&amp;D</Department><Associate><AssociateId>5</AssociateId><Name>TY</Name></Associate>'
    f'<Country><CountryId>578</CountryId><TwoLetterISOCountry>NO</TwoLetterISOCountry></Country>'
    f'</Response></CreateDefaultContactEntityResponse>'))
