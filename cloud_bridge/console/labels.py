"""The names officers read for the keys kiosks send: fields, findings, delivery.

Kiosks name what they read with English keys (``full_name``); the request
page shows the Vietnamese label, or the English one under the console's
language switch. A key this module does not know is shown with its
underscores turned into spaces, so a new field from a newer kiosk is still
readable rather than hidden.
"""

from __future__ import annotations

from collections.abc import Callable

# key: (Vietnamese, English)
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "full_name": ("Họ và tên", "Full name"),
    "date_of_birth": ("Ngày sinh", "Date of birth"),
    "sex": ("Giới tính", "Sex"),
    "id_number": ("Số định danh cá nhân", "Personal ID number"),
    "document_number": ("Số hiệu giấy tờ", "Document number"),
    "issue_date": ("Ngày cấp", "Date of issue"),
    "issued_by": ("Nơi cấp", "Issued by"),
    "place_of_birth": ("Nơi sinh", "Place of birth"),
    "place_of_origin": ("Quê quán", "Place of origin"),
    "residence": ("Nơi thường trú", "Permanent residence"),
    "address": ("Địa chỉ", "Address"),
    "nationality": ("Quốc tịch", "Nationality"),
    "ethnicity": ("Dân tộc", "Ethnic group"),
    "father_name": ("Họ tên cha", "Father's name"),
    "mother_name": ("Họ tên mẹ", "Mother's name"),
    "school": ("Trường", "School"),
    "major": ("Ngành đào tạo", "Field of study"),
    "rank": ("Xếp loại", "Classification"),
    "graduation_year": ("Năm tốt nghiệp", "Year of graduation"),
    "relation": ("Quan hệ với chủ hộ", "Relation to the head of household"),
    "expiry_date": ("Có giá trị đến", "Valid until"),
}
# Parts of the request the page says are missing.
MISSING_LABELS: dict[str, tuple[str, str]] = {
    "fields": ("thông tin đọc từ giấy tờ", "fields read from the document"),
    "face": ("kết quả đối chiếu khuôn mặt", "face check result"),
    "liveness": ("kết quả kiểm tra người thật", "liveness result"),
}
# Keys of the quality findings and mismatches kiosks report.
FINDING_LABELS: dict[str, tuple[str, str]] = {
    "page": ("Trang", "Page"),
    "problem": ("Vấn đề", "Problem"),
    "field": ("Trường", "Field"),
    "id_card": ("Trên căn cước", "On the ID card"),
    "document": ("Trên giấy tờ", "On the document"),
}
DELIVERY_LABELS: dict[str, tuple[str, str]] = {
    "email": ("Thư điện tử", "Email"),
    "wallet": ("Ví điện tử", "Wallet"),
    "attach_pdf": ("Đính kèm PDF", "Attach the PDF"),
    "copies": ("Số bản in", "Printed copies"),
}

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "officer": ("Công chức tư pháp", "Justice officer"),
    "supervisor": ("Giám sát viên", "Supervisor"),
    "fleet_manager": ("Quản lý ki-ốt", "Fleet manager"),
    "auditor": ("Kiểm tra viên", "Auditor"),
    "administrator": ("Quản trị viên", "Administrator"),
}


def labeller(table: dict[str, tuple[str, str]], lang: str) -> Callable[[str], str]:
    """Return a function naming a key of ``table`` in ``lang`` ("vi" or "en")."""
    index = 1 if lang == "en" else 0

    def label(key: str) -> str:
        known = table.get(key)
        return known[index] if known else key.replace("_", " ")

    return label
