//! Images uploaded to a thread (Chat 2024-03-15-preview), which its messages can attach.

use super::access::participant;
use super::{Caller, Chat};
use crate::error::{ApiError, ApiResult};
use crate::store::ImageRow;

/// An image as an upload request carries it.
#[derive(Debug)]
pub struct ImageUpload {
    pub data: Vec<u8>,
    /// `image-filename`, if sent.
    pub name: Option<String>,
}

/// The image format of `data`, from its first bytes: the spec allows jpeg, png, gif, heic and
/// webp.
fn sniff(data: &[u8]) -> Option<&'static str> {
    match data {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        [_, _, _, _, b'f', b't', b'y', b'p', brand @ ..]
            if [b"heic", b"heix", b"mif1", b"msf1"]
                .iter()
                .any(|b| brand.starts_with(*b)) =>
        {
            Some("image/heic")
        }
        _ => None,
    }
}

/// The service's 404 for images.
pub fn image_not_found() -> ApiError {
    ApiError::NotFound("The specified image was not found.".to_owned())
}

impl Chat {
    /// Stores an image a participant uploads; returns its row.
    pub async fn upload_image(
        &self,
        caller: &Caller,
        thread_id: &str,
        upload: ImageUpload,
    ) -> ApiResult<ImageRow> {
        let (caller, thread_id, now) = (caller.clone(), thread_id.to_owned(), self.now());
        self.store
            .write(move |tx| {
                participant(tx, &thread_id, &caller)?;
                let content_type = sniff(&upload.data).ok_or_else(|| {
                    ApiError::bad_request(
                        "The body is not an image of an allowed format (jpeg, png, gif, heic, webp).",
                    )
                })?;
                // The service's ids look like `0-eus-d2-fb42e272282ebb6ef76a3aedd1974433`.
                let image = ImageRow {
                    id: format!("0-emu-d1-{}", uuid::Uuid::new_v4().simple()),
                    name: upload.name,
                    content_type: content_type.to_owned(),
                    data: upload.data,
                    created_at: now,
                };
                tx.insert_image(&thread_id, &image)?;
                Ok(image)
            })
            .await
    }

    /// An image of the thread, in the `original` or `small` view (the emulator makes no
    /// thumbnails: both are the original).
    pub async fn get_image(
        &self,
        caller: &Caller,
        thread_id: &str,
        image_id: &str,
        view_type: &str,
    ) -> ApiResult<ImageRow> {
        self.store.read(|view| {
            participant(&view, thread_id, caller)?;
            if view_type != "original" && view_type != "small" {
                return Err(ApiError::bad_request(format!(
                    "Image view '{view_type}' is not valid; use 'original' or 'small'."
                )));
            }
            view.image(thread_id, image_id)?.ok_or_else(image_not_found)
        })
    }

    /// Deletes an image of the thread.
    pub async fn delete_image(
        &self,
        caller: &Caller,
        thread_id: &str,
        image_id: &str,
    ) -> ApiResult<()> {
        let (caller, thread_id, image_id) =
            (caller.clone(), thread_id.to_owned(), image_id.to_owned());
        self.store
            .write(move |tx| {
                participant(tx, &thread_id, &caller)?;
                if tx.delete_image(&thread_id, &image_id)? {
                    Ok(())
                } else {
                    Err(image_not_found())
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn formats_are_recognised_by_their_magic_bytes() {
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A]),
            Some("image/png")
        );
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypheic\x00"), Some("image/heic"));
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }
}
