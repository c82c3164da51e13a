"""Every sentence the citizen sees or hears, in Vietnamese and English.

Short, plain sentences. A text may hold ``{placeholders}`` the screen fills
in; texts that are spoken never hold personal data.
"""

from __future__ import annotations

LANGUAGES = ("vi", "en")

TEXTS: dict[str, tuple[str, str]] = {
    "app_name": ("Chứng thực bản sao tự động", "Certified copies kiosk"),
    "call_staff": ("Gọi nhân viên", "Call staff"),
    "staff_called": (
        "Nhân viên đang đến. Xin chờ ở đây.",
        "A member of staff is coming. Please wait here.",
    ),
    "large_text": ("Chữ to", "Large text"),
    "headphones_on": (
        "Đã cắm tai nghe: máy sẽ đọc to mọi hướng dẫn.",
        "Headphones are plugged in: every instruction is read aloud.",
    ),
    "attract": (
        "Chạm vào đây để làm bản sao có chứng thực",
        "Touch here to make a certified copy",
    ),
    "back": ("Quay lại", "Back"),
    "cancel": ("Hủy và kết thúc", "Cancel and finish"),
    "speech": ("Đọc to", "Read aloud"),
    "repeat": ("Nghe lại", "Repeat"),
    "louder": ("To hơn", "Louder"),
    "quieter": ("Nhỏ hơn", "Quieter"),
    "step_of": ("Bước {n} trên 6", "Step {n} of 6"),
    "welcome_title": ("Xin chào", "Welcome"),
    "welcome_body": (
        "Máy này làm bản sao có chứng thực của giấy tờ của bạn.",
        "This machine makes a certified copy of your document.",
    ),
    "consent_what": (
        "Chúng tôi đọc thẻ căn cước, chụp mặt bạn và chụp giấy tờ.",
        "We read your ID card, take a picture of your face and scan your document.",
    ),
    "consent_why": (
        "Ảnh mặt chỉ dùng để so với ảnh trên thẻ. Ảnh mặt bị xóa ngay sau lượt này.",
        "Your face picture is only compared with the photo on your card. "
        "It is deleted when you finish.",
    ),
    "consent_keep": (
        "Bản sao được lưu ở cơ quan tư pháp theo quy định.",
        "The copy is kept by the justice office as the law requires.",
    ),
    "start": ("Đồng ý và bắt đầu", "Agree and start"),
    "identify_title": ("Đặt thẻ căn cước", "Place your ID card"),
    "identify_body": (
        "Đặt thẻ căn cước dưới camera, mặt có ảnh hướng lên trên.",
        "Put your ID card under the camera, photo side up.",
    ),
    "identify_button": ("Đọc thẻ", "Read my card"),
    "card_no_qr": (
        "Không thấy mã QR. Đặt cả thẻ vào trong khung và giữ yên.",
        "No QR code was found. Put the whole card inside the frame and hold it still.",
    ),
    "card_unreadable": (
        "Không đọc được ảnh. Thử lại.",
        "The picture could not be read. Try again.",
    ),
    "card_not_citizen_id": (
        "Đây không phải thẻ căn cước công dân. Hãy dùng thẻ căn cước.",
        "This is not a citizen ID card. Please use your citizen ID card.",
    ),
    "card_no_face": (
        "Không thấy khuôn mặt trên ảnh thẻ. Lau thẻ và thử lại, hoặc gọi nhân viên.",
        "No face was found on the card's photo. Wipe the card and try again, "
        "or call staff.",
    ),
    "face_title": ("Kiểm tra khuôn mặt", "Face check"),
    "face_ready": (
        "Nhìn vào camera. Đưa mặt vào giữa khung hình bầu dục.",
        "Look at the camera. Put your face inside the oval.",
    ),
    "face_button": ("Bắt đầu kiểm tra", "Start the check"),
    "turn_left": (
        "Quay đầu sang trái, rồi nhìn thẳng.",
        "Turn your head left, then look straight.",
    ),
    "turn_right": (
        "Quay đầu sang phải, rồi nhìn thẳng.",
        "Turn your head right, then look straight.",
    ),
    "blink": ("Chớp mắt một lần.", "Blink once."),
    "face_hold": ("Giữ yên.", "Hold still."),
    "face_failed": (
        "Chưa khớp. Nhìn thẳng vào camera và thử lại. Còn {left} lần.",
        "That did not match. Look straight at the camera and try again. "
        "{left} tries left.",
    ),
    "face_none": (
        "Camera không thấy mặt bạn. Đứng trước camera, đưa mặt vào khung bầu dục. "
        "Còn {left} lần.",
        "The camera did not see your face. Stand in front of it with your face "
        "in the oval. {left} tries left.",
    ),
    "face_not_live": (
        "Máy chưa thấy bạn làm theo hướng dẫn. Làm chậm theo chữ trên màn hình. "
        "Còn {left} lần.",
        "The movement was not seen. Do what the screen asks, slowly. "
        "{left} tries left.",
    ),
    "face_passed": ("Kiểm tra khuôn mặt: đạt.", "Face check: passed."),
    "staff_title": ("Nhân viên sẽ giúp bạn", "Staff will help you"),
    "staff_body": (
        "Máy không kiểm tra được khuôn mặt. Nhân viên sẽ kiểm tra trực tiếp.",
        "The machine could not check your face. A member of staff will "
        "check you in person.",
    ),
    "staff_continue": ("Nhân viên đã kiểm tra, tiếp tục", "Staff checked me, continue"),
    "capture_title": ("Chụp giấy tờ", "Scan your document"),
    "capture_body": (
        "Đặt trang giấy phẳng dưới camera. Máy tự chụp khi trang đứng yên.",
        "Lay the page flat under the camera. It is taken when the page is still.",
    ),
    "capture_button": ("Chụp trang này", "Take this page"),
    "capture_done": ("Đã chụp xong", "I have scanned all pages"),
    "pages_taken": ("Các trang đã chụp", "Pages taken"),
    "page_n": ("Trang {n}", "Page {n}"),
    "delete": ("Xóa", "Delete"),
    "no_pages": ("Hãy chụp ít nhất một trang.", "Scan at least one page."),
    "too_many_pages": ("Đã đủ số trang tối đa.", "That is the most pages allowed."),
    "good_frame": ("Tốt. Giữ yên.", "Good. Hold still."),
    "no_document": (
        "Không thấy trang giấy. Đặt cả trang vào trong khung.",
        "No page was found. Put the whole page inside the frame.",
    ),
    "corner_outside": (
        "Trang bị cắt mất góc. Đưa trang vào giữa.",
        "Part of the page is cut off. Move it to the middle.",
    ),
    "blurred": (
        "Ảnh bị mờ. Giữ yên trang giấy.",
        "The picture is blurred. Hold the page still.",
    ),
    "glare": (
        "Bị lóa sáng. Nghiêng trang một chút.",
        "There is glare. Tilt the page a little.",
    ),
    "low_resolution": (
        "Chữ quá nhỏ. Đưa trang lại gần.",
        "The text is too small. Bring the page closer.",
    ),
    "page_title": ("Xem trang {n}", "Check page {n}"),
    "page_body": (
        "Xem trang này có rõ không.",
        "Check that this page is clear.",
    ),
    "page_unreadable": (
        "Máy không đọc được trang này. Hãy chụp lại. Nếu vẫn không được, "
        "nhân viên sẽ kiểm tra trang này.",
        "The kiosk cannot read this page. Please retake it. If it still cannot, "
        "staff will check the page.",
    ),
    "page_read": ("Máy đã đọc được trang này.", "The kiosk has read this page."),
    "read_title": ("Máy đọc được", "What the kiosk read"),
    "read_type": ("Loại giấy tờ", "Type of document"),
    "read_none": (
        "Máy không đọc được giấy tờ. Nhân viên sẽ kiểm tra.",
        "The kiosk could not read the document. Staff will check it.",
    ),
    "read_unreadable_pages": (
        "Không đọc được trang: {pages}. Nhân viên sẽ kiểm tra các trang này.",
        "Pages not read: {pages}. Staff will check them.",
    ),
    "read_mismatch": (
        "Khác với thẻ căn cước: {fields}. Cán bộ sẽ kiểm tra.",
        "Different from your ID card: {fields}. The officer will check.",
    ),
    "confidence": ("độ tin cậy {n}%", "confidence {n}%"),
    "field_full_name": ("Họ và tên", "Full name"),
    "field_date_of_birth": ("Ngày sinh", "Date of birth"),
    "field_id_number": ("Số định danh", "ID number"),
    "field_document_number": ("Số giấy tờ", "Document number"),
    "field_issue_date": ("Ngày cấp", "Date of issue"),
    "retake": ("Chụp lại", "Retake"),
    "use_page": ("Dùng trang này", "Use this page"),
    "review_title": ("Thông tin bản sao", "About your copy"),
    "document_type": ("Loại giấy tờ", "Type of document"),
    "choose": ("Chọn loại giấy tờ", "Choose a type"),
    "copies": ("Số bản in", "Paper copies"),
    "delivery": ("Nhận bản sao điện tử", "Receive the digital copy"),
    "delivery_email": ("Qua email", "By email"),
    "delivery_wallet": ("Vào ứng dụng ví", "In my wallet app"),
    "email": ("Địa chỉ email", "Email address"),
    "continue": ("Tiếp tục", "Continue"),
    "error_summary": ("Có lỗi cần sửa", "There is a problem"),
    "err_document_type": ("Chọn loại giấy tờ.", "Choose the type of document."),
    "err_copies": ("Chọn từ 1 đến {max} bản.", "Choose 1 to {max} copies."),
    "err_delivery": ("Chọn cách nhận bản sao.", "Choose how to receive the copy."),
    "err_email": (
        "Nhập email đúng dạng, ví dụ ten@example.vn.",
        "Enter an email address like name@example.vn.",
    ),
    "confirm_title": ("Kiểm tra lại", "Check your answers"),
    "pages": ("Số trang", "Pages"),
    "fee": ("Lệ phí", "Fee"),
    "change": ("Sửa", "Change"),
    "submit": ("Gửi yêu cầu", "Send the request"),
    "waiting_title": ("Đang chờ cán bộ duyệt", "Waiting for the officer"),
    "waiting_body": (
        "Xin chờ. Cán bộ đang xem yêu cầu.",
        "Please wait. An officer is checking your request.",
    ),
    "queue_position": ("Số yêu cầu trước bạn: {n}", "Requests before yours: {n}"),
    "waiting_sending": ("Đang gửi yêu cầu...", "Sending your request..."),
    "offline_body": (
        "Mạng đang gián đoạn. Yêu cầu đã được lưu. Khi được duyệt, bản sao "
        "sẽ gửi đến email hoặc ví của bạn. Bạn có thể về.",
        "The network is down. Your request is saved. Once approved, the copy "
        "will arrive by email or in your wallet. You may leave.",
    ),
    "printing_title": ("Đang in bản sao", "Printing your copy"),
    "approved_title": ("Đã duyệt", "Approved"),
    "approved_body": (
        "Lấy bản sao và biên nhận ở khay dưới.",
        "Take your copy and receipt from the tray below.",
    ),
    "print_failed": (
        "Máy in gặp lỗi. Nhân viên sẽ in giúp bạn. Bản sao điện tử vẫn "
        "được gửi cho bạn.",
        "The printer has a problem. Staff will print it for you. The digital "
        "copy is still sent to you.",
    ),
    "paper_out_a4": (
        "Máy in A4 hết giấy. Bản sao chưa được in. Hãy đến quầy: nhân viên sẽ "
        "in giúp bạn. Bản sao điện tử vẫn được gửi cho bạn.",
        "The A4 printer is out of paper, so your copy was not printed. Please "
        "go to the counter: staff will print it. The digital copy is still "
        "sent to you.",
    ),
    "paper_out_receipt": (
        "Bản sao đã in xong, nhưng máy in biên nhận hết giấy. Hãy ghi lại mã "
        "bản sao và mã truy cập dưới đây, hoặc đến quầy để lấy biên nhận.",
        "Your copy is printed, but the receipt printer is out of paper. Write "
        "down the copy identifier and access code below, or get a receipt at "
        "the counter.",
    ),
    "receipt_failed": (
        "Bản sao đã in xong, nhưng không in được biên nhận. Hãy ghi lại mã "
        "bản sao và mã truy cập dưới đây.",
        "Your copy is printed, but the receipt could not be printed. Write "
        "down the copy identifier and access code below.",
    ),
    "copy_id": ("Mã bản sao", "Copy identifier"),
    "access_code": ("Mã truy cập", "Access code"),
    "rejected_title": ("Không được duyệt", "Not approved"),
    "rejected_body": ("Lý do:", "Reason:"),
    "finish": ("Xong", "Finish"),
    "idle_title": ("Bạn còn ở đây không?", "Are you still there?"),
    "idle_body": (
        "Máy sẽ xóa thông tin sau {s} giây.",
        "Your details will be cleared in {s} seconds.",
    ),
    "idle_continue": ("Tôi vẫn ở đây", "I am still here"),
    "busy": ("Xin chờ một chút.", "Please wait a moment."),
    "disk_full": (
        "Máy này tạm thời không nhận yêu cầu mới. Xin mời đến quầy để được "
        "giúp. Các yêu cầu đã gửi vẫn được giữ an toàn.",
        "This kiosk cannot take new requests right now. Please go to the "
        "counter for help. Requests already sent are kept safe.",
    ),
    "storage_full": (
        "Máy đang lỗi lưu trữ. Hãy gọi nhân viên.",
        "The machine cannot save right now. Please call staff.",
    ),
    "vnd": ("{n} đồng", "{n} dong"),
}


def text(key: str, language: str, **values: object) -> str:
    """Return the text ``key`` in ``language``, with ``values`` filled in."""
    pair = TEXTS.get(key)
    if pair is None:
        return key
    chosen = pair[1] if language == "en" else pair[0]
    return chosen.format(**values) if values else chosen


def money(amount: int) -> str:
    """Return ``amount`` with dots between thousands, as Vietnamese writes it."""
    return f"{amount:,}".replace(",", ".")
